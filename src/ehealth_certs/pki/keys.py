"""Key identifiers and the key policy: sizes, exponents, curves and known weak keys (quality-bar §1.2, §8).

``check_public_key`` runs on every certificate request, so every check is offline and fast (well under
5 ms for RSA-4096): badkeys is called with an explicit list of offline checks (its default list includes
``blocklist``, which downloads), and the Debian weak-key lists are vendored in ``pki/data/`` in the
openssl-blacklist / Boulder format (last 10 bytes of SHA-1 over ``"Modulus=%X\\n"``); operators can add lists
in ``<data dir>/trust/debian-weak-keys/`` (``load_debian_weak_keys``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import badkeys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ehealth_certs.errors import DomainError, ErrorKind

DATA_DIR: Final = Path(__file__).resolve().parent / "data"
DEBIAN_WEAK_KEY_GLOB: Final = "debian-weak-keys-*"

MIN_RSA_EXPONENT: Final = 65537
# BR §6.1.6 recommends at most 2^256 - 1; a huge e also opens Wiener-style small-d attacks.
MAX_RSA_EXPONENT: Final = 2**256 - 1
SMALL_FACTOR_BOUND: Final = 752

# badkeys checks that need no network and no batch of keys, mapped to our check names.
# "blocklist" (downloads) and "sharedprimes" (batch GCD over many keys) are deliberately absent.
BADKEYS_RSA_CHECKS: Final[dict[str, str]] = {
    "rsainvalid": "rsa-exponent",
    "smallfactors": "small-factors",
    "roca": "roca",
    "fermat": "fermat",
    "rsapoly": "rsa-poly",
    "smalld": "small-d",
}


def public_key_identifier(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    """The eHealth PublicKeyIdentifier and SKI: SHA-1 of the subjectPublicKey BIT STRING contents."""
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest


def spki_sha256(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    """Lower-case hex SHA-256 over the DER SubjectPublicKeyInfo (the badkeys / blocklist key id)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Debian weak keys (CVE-2008-0166)
# ---------------------------------------------------------------------------------------------------


def debian_modulus_suffix(n: int) -> bytes:
    """The 10-byte fingerprint of an RSA modulus in the openssl-blacklist / Boulder lists."""
    modulus_hex = n.to_bytes((n.bit_length() + 7) // 8, "big").hex().upper()
    return hashlib.sha1(f"Modulus={modulus_hex}\n".encode("ascii"), usedforsecurity=False).digest()[10:]


class DebianWeakKeys:
    """A set of truncated modulus fingerprints, looked up in O(1)."""

    def __init__(self, suffixes: Iterable[bytes] = ()) -> None:
        self._suffixes: frozenset[bytes] = frozenset(suffixes)

    def __len__(self) -> int:
        return len(self._suffixes)

    def contains(self, n: int) -> bool:
        return debian_modulus_suffix(n) in self._suffixes

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> DebianWeakKeys:
        """Load openssl-blacklist text files (20 hex digits a line, ``#`` comments) or Boulder JSON lists.

        A text line may also hold the full 40-digit SHA-1; only its last 20 digits count.
        """
        suffixes: set[bytes] = set()
        for path in paths:
            try:
                suffixes.update(cls._parse(path))
            except ValueError as exc:  # also UnicodeDecodeError and JSONDecodeError
                raise ValueError(f"{path}: {exc}") from exc
        return cls(suffixes)

    @staticmethod
    def _parse(path: Path) -> set[bytes]:
        suffixes: set[bytes] = set()
        text = path.read_text("ascii")
        entries: list[str]
        if path.suffix == ".json":
            loaded: Any = json.loads(text)
            if not isinstance(loaded, list) or not all(isinstance(x, str) for x in loaded):
                raise ValueError("expected a JSON list of hex strings")
            entries = loaded
        else:
            entries = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        for entry in entries:
            if not entry:
                continue
            raw = bytes.fromhex(entry)
            if len(raw) not in (10, 20):
                raise ValueError(f"{entry!r} is not a 10-byte truncated SHA-1")
            suffixes.add(raw[-10:])
        return suffixes


def _list_files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix in (".txt", ".json"))


@functools.cache
def packaged_debian_weak_keys() -> DebianWeakKeys:
    """The lists shipped in ``pki/data/debian-weak-keys-*.txt|json`` (loaded once per process)."""
    return DebianWeakKeys.from_files(_list_files(DATA_DIR, DEBIAN_WEAK_KEY_GLOB))


def load_debian_weak_keys(operator_dir: Path) -> DebianWeakKeys:
    """The packaged lists plus every ``*.txt`` / ``*.json`` list an operator put in ``operator_dir``."""
    operator_files = _list_files(operator_dir, "*") if operator_dir.is_dir() else []
    try:
        return DebianWeakKeys.from_files(_list_files(DATA_DIR, DEBIAN_WEAK_KEY_GLOB) + operator_files)
    except ValueError as exc:  # also UnicodeDecodeError and JSONDecodeError
        raise DomainError(ErrorKind.CONFIGURATION, f"unreadable Debian weak-key list: {exc}") from exc


# ---------------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------------

_SMALL_PRIMES_PRODUCT: Final = math.prod(
    p for p in range(2, SMALL_FACTOR_BOUND) if all(p % d for d in range(2, math.isqrt(p) + 1))
)

# Short Weierstrass parameters (FIPS 186-4 D.1.2): y^2 = x^3 - 3x + b over GF(p); cofactor 1, so a
# point on the curve other than infinity has the prime order n.
_CURVES: Final[dict[str, tuple[int, int]]] = {
    "secp256r1": (
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
    "secp384r1": (
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    ),
}


def _weak(check: str, detail: str) -> DomainError:
    return DomainError(ErrorKind.WEAK_KEY, detail, check=check)


def _check_rsa(key: rsa.RSAPublicKey, min_bits: int, max_bits: int, debian: DebianWeakKeys) -> None:
    numbers = key.public_numbers()
    n, e = numbers.n, numbers.e
    bits = n.bit_length()
    if bits < min_bits or bits > max_bits or bits % 8:
        raise _weak("rsa-size", f"RSA key of {bits} bits: must be {min_bits} to {max_bits}, a multiple of 8")
    if e % 2 == 0 or e < MIN_RSA_EXPONENT or e > MAX_RSA_EXPONENT:
        raise _weak("rsa-exponent", f"RSA public exponent {e}: must be odd, at least 65537 and below 2^256")
    if math.gcd(n, _SMALL_PRIMES_PRODUCT) != 1:
        raise _weak("small-factors", f"RSA modulus has a prime factor below {SMALL_FACTOR_BOUND}")
    if debian.contains(n):
        raise _weak("debian-weak", "RSA key is a known Debian weak key (CVE-2008-0166)")
    found = badkeys.checkrsa(n, e=e, checks=list(BADKEYS_RSA_CHECKS))
    for name, check in BADKEYS_RSA_CHECKS.items():
        if name in found:
            raise _weak(check, f"RSA key fails the {name} check (known weakness)")


def _check_ec(key: ec.EllipticCurvePublicKey) -> None:
    params = _CURVES.get(key.curve.name)
    if params is None:
        raise _weak("ec-curve", f"elliptic curve {key.curve.name}: only P-256 and P-384 are accepted")
    p, b = params
    numbers = key.public_numbers()
    x, y = numbers.x, numbers.y
    on_curve = 0 <= x < p and 0 <= y < p and (y * y - (x * x * x - 3 * x + b)) % p == 0
    if not on_curve:
        raise _weak("ec-point", f"EC public key is not a valid point of {key.curve.name}")


def check_public_key(
    public_key: object,
    *,
    min_rsa_bits: int = 2048,
    max_rsa_bits: int = 4096,
    debian_weak_keys: DebianWeakKeys | None = None,
) -> None:
    """Refuse a key the policy does not accept: ``DomainError(WEAK_KEY, detail, check=<name>)``.

    Checks, in order: ``key-type`` (RSA or EC only), ``rsa-size``, ``rsa-exponent`` (odd, >= 65537),
    ``small-factors`` (a prime below 752, then badkeys up to 65537), ``debian-weak``, ``roca``, ``fermat``
    (100 rounds), ``rsa-poly`` and ``small-d`` (badkeys), ``ec-curve`` (P-256, P-384) and ``ec-point``.
    ``debian_weak_keys`` defaults to the lists packaged in ``pki/data/``.
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        debian = packaged_debian_weak_keys() if debian_weak_keys is None else debian_weak_keys
        _check_rsa(public_key, min_rsa_bits, max_rsa_bits, debian)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        _check_ec(public_key)
    else:
        raise _weak("key-type", f"key type {type(public_key).__name__}: only RSA and EC keys are accepted")
