"""GenerateCertificate refuses a key on an operator-supplied Debian weak-key list (CVE-2008-0166), over the
HTTP API, and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from ehealth_certs.clock import FixedClock
from ehealth_certs.config import Settings
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.keys import debian_modulus_suffix
from ehealth_certs.platform import Platform
from ehealth_certs.storage.models import CertificateRequest
from tests.conftest import Person
from tests.ra.helpers import CONTACT, add_doctor, http_client, keystore_dir, manager

SSIN = "79121430944"


@pytest.fixture
def listed_key(settings: Settings) -> rsa.RSAPrivateKey:
    """A key whose modulus an operator listed before the platform started."""
    key = rsa.generate_private_key(65537, 2048)
    folder = settings.debian_weak_keys_dir
    folder.mkdir(parents=True)
    (folder / "debian-weak-keys-rsa-2048.txt").write_text(
        f"# operator list\n{debian_modulus_suffix(key.public_key().public_numbers().n).hex()}\n"
    )
    return key


def test_a_listed_debian_weak_key_is_refused_and_nothing_is_stored(
    listed_key: rsa.RSAPrivateKey,
    platform: Platform,
    trust_citizen_ca: None,
    clock: FixedClock,
    eid_factory: Callable[..., Person],
    tmp_path: Path,
) -> None:
    assert platform.rt.debian_weak_keys.contains(listed_key.public_key().public_numbers().n)
    assert "\nehcerts_debian_weak_keys 1.0\n" in http_client(platform).get("/metrics").text
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    m = manager(platform, clock, key_factory=lambda: listed_key)
    with pytest.raises(DomainError) as err:
        m.request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT)
    assert err.value.kind is ErrorKind.WEAK_KEY
    assert "Debian" in str(err.value)
    with platform.rt.db.read() as s:
        assert s.execute(select(func.count()).select_from(CertificateRequest)).scalar_one() == 0
    assert list(keystore_dir(tmp_path).iterdir()) == []

    # the same person with a fresh key is served
    fresh = manager(platform, clock).request(
        person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT
    )
    assert fresh.delivered
