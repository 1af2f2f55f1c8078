"""Fast key generation for the Certificate Manager in these tests.

Every test has a fresh database, so the same pre-generated RSA-2048 keys can serve as authentication and
encryption keys in every test; only the manager's own key generation is replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

_POOL: list[rsa.RSAPrivateKey] = []


@pytest.fixture(autouse=True)
def pooled_manager_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not _POOL:
        _POOL.extend(rsa.generate_private_key(65537, 2048) for _ in range(12))
    keys = iter(_POOL)

    def generate(public_exponent: int, key_size: int) -> rsa.RSAPrivateKey:
        key = next(keys, None) if (public_exponent, key_size) == (65537, 2048) else None
        return key or rsa.generate_private_key(public_exponent, key_size)

    fake = SimpleNamespace(generate_private_key=generate, RSAPrivateKey=rsa.RSAPrivateKey)
    monkeypatch.setattr("ehealth_certs.client.manager.rsa", fake)
    monkeypatch.setattr("ehealth_certs.client.etk.rsa", fake)
    yield
