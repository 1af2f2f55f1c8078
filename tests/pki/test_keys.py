"""Key identifiers and the weak-key policy (quality-bar §1.2, §8), cross-checked with the badkeys CLI."""

from __future__ import annotations

import hashlib
import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import badkeys
import pytest
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.keys import (
    DebianWeakKeys,
    check_public_key,
    debian_modulus_suffix,
    load_debian_weak_keys,
    packaged_debian_weak_keys,
    public_key_identifier,
    spki_sha256,
)

BADKEYS_CLI = str(Path(sys.executable).with_name("badkeys"))

# ---------------------------------------------------------------------------------------------------
# prime arithmetic of our own, so that tests can build keys with chosen primes
# ---------------------------------------------------------------------------------------------------

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, math.isqrt(p) + 1))]


def _is_probable_prime(n: int, rng: random.Random, rounds: int = 32) -> bool:
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _next_prime(n: int, rng: random.Random) -> int:
    n |= 1
    while not _is_probable_prime(n, rng):
        n += 2
    return n


def _random_prime(bits: int, rng: random.Random) -> int:
    # Top two bits set so that two such primes give a modulus of exactly 2 * bits.
    return _next_prime(rng.getrandbits(bits) | (3 << (bits - 2)), rng)


def _private_key(p: int, q: int, e: int = 65537) -> rsa.RSAPrivateKey:
    n = p * q
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    )
    return numbers.private_key()


def _roca_style_prime(bits: int, rng: random.Random) -> int:
    """A prime of the Infineon RSALib shape p = k*M + (65537^a mod M), M the primorial of 126 primes."""
    primes = [2, *_SMALL_PRIMES][:126]
    m = math.prod(primes)
    while True:
        a = rng.randrange(1, 2**40)
        k_bits = bits - m.bit_length()
        k = rng.getrandbits(k_bits) | (3 << (k_bits - 2))
        p = k * m + pow(65537, a, m)
        if p.bit_length() == bits and _is_probable_prime(p, rng):
            return p


def _modulus_with_factor(small_prime: int, bits: int = 2048) -> int:
    """``small_prime`` times a freshly generated RSA modulus, exactly ``bits`` long."""
    for _ in range(10):
        for other_bits in (bits - small_prime.bit_length(), bits - small_prime.bit_length() + 1):
            other = rsa.generate_private_key(65537, other_bits)
            n = small_prime * other.public_key().public_numbers().n
            if n.bit_length() == bits:
                return n
    raise AssertionError("no modulus of the right size")


class _FakeRsaKey(rsa.RSAPublicKey):
    """An RSA public key with numbers that cryptography refuses to build (even exponent)."""

    def __init__(self, n: int, e: int) -> None:
        self._numbers = rsa.RSAPublicNumbers(e, n)

    def public_numbers(self) -> rsa.RSAPublicNumbers:
        return self._numbers

    @property
    def key_size(self) -> int:
        return self._numbers.n.bit_length()

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(name)

    encrypt = verify = recover_data_from_signature = public_bytes = __copy__ = __deepcopy__ = None  # type: ignore[assignment]
    __eq__ = object.__eq__  # type: ignore[assignment]
    __hash__ = object.__hash__  # type: ignore[assignment]


class _FakeEcKey(ec.EllipticCurvePublicKey):
    """A P-256 'key' whose point is off the curve (cryptography refuses to build one)."""

    def __init__(self, x: int, y: int) -> None:
        self._numbers = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1())

    def public_numbers(self) -> ec.EllipticCurvePublicNumbers:
        return self._numbers

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    verify = public_bytes = __copy__ = __deepcopy__ = None  # type: ignore[assignment]
    __eq__ = object.__eq__  # type: ignore[assignment]
    __hash__ = object.__hash__  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------------------
# fixtures: generated once per module
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rng() -> random.Random:
    return random.Random(20240607)


@pytest.fixture(scope="module")
def good_2048() -> rsa.RSAPublicKey:
    return rsa.generate_private_key(65537, 2048).public_key()


@pytest.fixture(scope="module")
def rsa_cases(
    rng: random.Random, good_2048: rsa.RSAPublicKey
) -> dict[str, tuple[rsa.RSAPublicKey, str | None]]:
    """name -> (public key, expected check or None for a good key)."""
    close_p = _random_prime(1024, rng)
    close_q = _next_prime(close_p + 2**500, rng)
    factor_751 = _modulus_with_factor(751)
    factor_65521 = _modulus_with_factor(65521)
    return {
        "good-2048": (good_2048, None),
        "good-3072": (rsa.generate_private_key(65537, 3072).public_key(), None),
        "rsa-1024": (rsa.generate_private_key(65537, 1024).public_key(), "rsa-size"),  # noqa: S505  (deliberately weak: the case under test)
        "rsa-2047": (rsa.generate_private_key(65537, 2047).public_key(), "rsa-size"),  # noqa: S505  (deliberately weak: the case under test)
        "e-3": (rsa.generate_private_key(3, 2048).public_key(), "rsa-exponent"),
        "factor-751": (rsa.RSAPublicNumbers(65537, factor_751).public_key(), "small-factors"),
        "factor-65521": (rsa.RSAPublicNumbers(65537, factor_65521).public_key(), "small-factors"),
        "fermat": (_private_key(close_p, close_q).public_key(), "fermat"),
        "roca": (
            _private_key(_roca_style_prime(1024, rng), _roca_style_prime(1024, rng)).public_key(),
            "roca",
        ),
    }


def _check_name(fn: Callable[[], None]) -> str:
    with pytest.raises(DomainError) as info:
        fn()
    assert info.value.kind is ErrorKind.WEAK_KEY
    check = info.value.params["check"]
    assert isinstance(check, str)
    return check


# ---------------------------------------------------------------------------------------------------
# identifiers
# ---------------------------------------------------------------------------------------------------


def test_public_key_identifier_is_sha1_of_the_bit_string(good_2048: rsa.RSAPublicKey) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    for key in (good_2048, p256):
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        bit_string = asn1_keys.PublicKeyInfo.load(spki)["public_key"]
        contents = bit_string.contents[1:]  # the first content octet counts the unused bits
        pki = public_key_identifier(key)
        assert len(pki) == 20
        assert pki == hashlib.sha1(contents).digest()
        assert spki_sha256(key) == hashlib.sha256(spki).hexdigest()
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert badkeys.checkpubkey(pem.decode(), checks=[])["spkisha256"] == spki_sha256(key)


# ---------------------------------------------------------------------------------------------------
# RSA policy
# ---------------------------------------------------------------------------------------------------

RSA_CASE_NAMES = ["good-2048", "good-3072", "rsa-1024", "rsa-2047", "e-3", "factor-751", "factor-65521",
                  "fermat", "roca"]  # fmt: skip


@pytest.mark.parametrize("case", RSA_CASE_NAMES)
def test_rsa_cases(case: str, rsa_cases: dict[str, tuple[rsa.RSAPublicKey, str | None]]) -> None:
    key, expected = rsa_cases[case]
    if expected is None:
        check_public_key(key)
    else:
        assert _check_name(lambda: check_public_key(key)) == expected


def test_rsa_4096_accepted_and_fast() -> None:
    key = rsa.generate_private_key(65537, 4096).public_key()
    check_public_key(key)
    start = time.perf_counter()
    for _ in range(50):
        check_public_key(key)
    assert (time.perf_counter() - start) / 50 < 0.005


def test_rsa_size_bounds(good_2048: rsa.RSAPublicKey) -> None:
    assert _check_name(lambda: check_public_key(good_2048, min_rsa_bits=3072)) == "rsa-size"
    too_big = rsa.RSAPublicNumbers(65537, (1 << 4103) | 1).public_key()
    assert _check_name(lambda: check_public_key(too_big)) == "rsa-size"
    check_public_key(good_2048, min_rsa_bits=2048, max_rsa_bits=2048)


def test_rsa_exponent(good_2048: rsa.RSAPublicKey) -> None:
    n = good_2048.public_numbers().n
    assert _check_name(lambda: check_public_key(_FakeRsaKey(n, 65538))) == "rsa-exponent"
    assert _check_name(lambda: check_public_key(_FakeRsaKey(n, 65536))) == "rsa-exponent"
    assert _check_name(lambda: check_public_key(rsa.RSAPublicNumbers(257, n).public_key())) == "rsa-exponent"
    huge_e = rsa.RSAPublicNumbers(2**300 + 1, n).public_key()
    assert _check_name(lambda: check_public_key(huge_e)) == "rsa-exponent"


def test_badkeys_cli_agrees(
    tmp_path: Path, rsa_cases: dict[str, tuple[rsa.RSAPublicKey, str | None]]
) -> None:
    # Our check name -> what badkeys prints for the same key (rsawarnings covers size and exponent).
    expected_token = {
        "rsa-1024": "rsawarnings/too_small",
        "rsa-2047": "rsawarnings/too_small",
        "e-3": "rsawarnings/exponent_3",
        "factor-751": "smallfactors",
        "factor-65521": "smallfactors",
        "fermat": "fermat",
        "roca": "roca",
    }
    files = []
    for name in RSA_CASE_NAMES:
        path = tmp_path / f"{name}.pem"
        key = rsa_cases[name][0]
        path.write_bytes(
            key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        files.append(str(path))
    result = subprocess.run(
        [BADKEYS_CLI, "-c", "fermat,roca,smallfactors,rsainvalid,rsawarnings", *files],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    lines = result.stdout.splitlines()
    for name in RSA_CASE_NAMES:
        key, ours = rsa_cases[name]
        theirs = [line for line in lines if line.endswith(f"/{name}.pem")]
        if ours is None:
            assert theirs == []
        else:
            assert theirs, f"badkeys found nothing for {name}"
            assert any(line.startswith(expected_token[name]) for line in theirs), theirs
    single = subprocess.run(
        [BADKEYS_CLI, "-c", "fermat,roca,smallfactors,rsainvalid,rsawarnings", files[0]],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert single.returncode == 0
    assert single.stdout == ""


# ---------------------------------------------------------------------------------------------------
# Debian weak keys
# ---------------------------------------------------------------------------------------------------

# Boulder's goodkey test vector: this modulus hashes to ...8df20e6961a16398b85a in the list format.
BOULDER_MODULUS = int(
    "D673252AF6723C3F72529403EAB7C30DEF3C52F97E799825F4A70191C616ADCF1ECE1113F1625971074C492C592025FD"
    "EADBDB146A081826BDF0D77C3C913DCF1B6F0B3B78F5108D2E493AD0EEE8CA5C021711ADC13D358E61133870FCD19C8E"
    "5C22403959782AA82E72AEE53A3D491E3912CE27B27E1A85EA69C19A527D28F7934C9823B7E56FDD657DAC83FDC65BB2"
    "2A98D843DF73238919781B714C81A5E2AFEC71F5C54AA2A27C590AD94C03C1062D50EFCFFAC743E3C8A3AE056846A1D7"
    "56EB862BF4224169D467C35215ADE0AFCC11E85FE629AFB802C4786FF2E9C929BCCF502B3D3B8876C6A11785CC398B38"
    "9F1D86BDD9CB0BD4EC13956EC3FA270D",
    16,
)


def test_debian_fingerprint_format() -> None:
    assert debian_modulus_suffix(BOULDER_MODULUS).hex() == "8df20e6961a16398b85a"


def test_debian_fingerprint_matches_openssl_modulus(tmp_path: Path, good_2048: rsa.RSAPublicKey) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(
        good_2048.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    out = subprocess.run(
        ["openssl", "rsa", "-pubin", "-in", str(path), "-noout", "-modulus"],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert out.startswith(b"Modulus=")
    # openssl-blacklist: `openssl rsa -modulus | sha1sum | cut -c 21-`
    expected = hashlib.sha1(out).hexdigest()[20:]
    assert debian_modulus_suffix(good_2048.public_numbers().n).hex() == expected


def test_debian_weak_key_is_refused(tmp_path: Path, good_2048: rsa.RSAPublicKey) -> None:
    n = good_2048.public_numbers().n
    text = tmp_path / "debian-weak-keys-test.txt"
    text.write_text(f"# test list\n\n{debian_modulus_suffix(n).hex()}\n8df20e6961a16398b85a\n")
    listed = DebianWeakKeys.from_files([text])
    assert len(listed) == 2
    assert listed.contains(n)
    assert listed.contains(BOULDER_MODULUS)
    assert _check_name(lambda: check_public_key(good_2048, debian_weak_keys=listed)) == "debian-weak"
    check_public_key(good_2048, debian_weak_keys=DebianWeakKeys())


def test_debian_list_formats(tmp_path: Path) -> None:
    full = hashlib.sha1(b"x").hexdigest()
    js = tmp_path / "debian-weak-keys-boulder.json"
    js.write_text(json.dumps(["8df20e6961a16398b85a"]))
    txt = tmp_path / "debian-weak-keys-full.txt"
    txt.write_text(full + "\n")
    loaded = DebianWeakKeys.from_files([js, txt])
    assert len(loaded) == 2
    assert loaded.contains(BOULDER_MODULUS)
    for bad in ("zz\n", "abcd\n"):
        broken = tmp_path / "debian-weak-keys-bad.txt"
        broken.write_text(bad)
        with pytest.raises(ValueError):
            DebianWeakKeys.from_files([broken])


def test_packaged_lists_load(good_2048: rsa.RSAPublicKey) -> None:
    packaged = packaged_debian_weak_keys()
    assert packaged is packaged_debian_weak_keys()  # loaded once
    assert not packaged.contains(good_2048.public_numbers().n)


# ---------------------------------------------------------------------------------------------------
# EC and other key types
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_ec_accepted(curve: ec.EllipticCurve) -> None:
    check_public_key(ec.generate_private_key(curve).public_key())


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.SECP521R1(), ec.SECP224R1()])
def test_ec_curve_refused(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve).public_key()
    assert _check_name(lambda: check_public_key(key)) == "ec-curve"


def test_ec_point_off_curve_refused() -> None:
    good = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    assert _check_name(lambda: check_public_key(_FakeEcKey(good.x, good.y + 1))) == "ec-point"
    p = 2**256 - 2**224 + 2**192 + 2**96 - 1
    # Same residue class but outside the field range.
    assert _check_name(lambda: check_public_key(_FakeEcKey(good.x + p, good.y))) == "ec-point"
    check_public_key(_FakeEcKey(good.x, good.y))


@pytest.mark.parametrize(
    "key",
    [
        ed25519.Ed25519PrivateKey.generate().public_key(),
        x25519.X25519PrivateKey.generate().public_key(),
        b"not a key",
        None,
    ],
)
def test_other_key_types_refused(key: object) -> None:
    assert _check_name(lambda: check_public_key(key)) == "key-type"


def test_operator_lists_are_loaded_beside_the_packaged_ones(tmp_path: Path) -> None:
    folder = tmp_path / "debian-weak-keys"
    assert len(load_debian_weak_keys(folder)) == len(packaged_debian_weak_keys())  # no folder: packaged only
    folder.mkdir()
    (folder / "rsa-2048-le64.txt").write_text("8df20e6961a16398b85a\n")
    (folder / "extra.json").write_text(json.dumps(["00112233445566778899"]))
    (folder / "README.md").write_text("not a list: ignored\n")
    loaded = load_debian_weak_keys(folder)
    assert len(loaded) == len(packaged_debian_weak_keys()) + 2
    assert loaded.contains(BOULDER_MODULUS)
    (folder / "broken.txt").write_text("not-hex\n")
    with pytest.raises(DomainError) as err:
        load_debian_weak_keys(folder)
    assert err.value.kind is ErrorKind.CONFIGURATION and "broken.txt" in str(err.value)
