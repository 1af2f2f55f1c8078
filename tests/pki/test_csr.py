"""CSR parsing and proof of possession (quality-bar §1.3 and check 4)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.csr import ParsedCsr, parse_csr
from ehealth_certs.pki.names import EHealthName, build_subject, names_equal

SUBJECT = build_subject(EHealthName("SSIN", "79121430944", "JAN JANSSENS"))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_csr_der(rsa_key: rsa.RSAPrivateKey) -> bytes:
    return _csr(rsa_key)


def _csr(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, algorithm: hashes.HashAlgorithm | None = None,
         **kwargs: object) -> bytes:  # fmt: skip
    builder = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT)
    csr = builder.sign(key, algorithm or hashes.SHA256(), **kwargs)  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.DER)


def _raw_csr(
    spki: bytes,
    signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    algorithm: str,
    hash_algorithm: hashes.HashAlgorithm,
    parameters: object = None,
    pss: bool = False,
) -> bytes:
    """A CSR built field by field: any key in the info, any signer, any algorithm identifier."""
    info = asn1_csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": asn1_x509.Name.load(SUBJECT.public_bytes()),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(spki),
            "attributes": [],
        }
    )
    tbs = info.dump()
    if isinstance(signer, rsa.RSAPrivateKey):
        pad: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(hash_algorithm), hash_algorithm.digest_size)
            if pss
            else padding.PKCS1v15()
        )
        signature = signer.sign(tbs, pad, hash_algorithm)
    else:
        signature = signer.sign(tbs, ec.ECDSA(hash_algorithm))
    alg: dict[str, object] = {"algorithm": algorithm}
    if parameters is not None:
        alg["parameters"] = parameters
    return asn1_csr.CertificationRequest(
        {"certification_request_info": info, "signature_algorithm": alg, "signature": signature}
    ).dump()


def _spki(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _refused(data: bytes, **kwargs: int) -> DomainError:
    with pytest.raises(DomainError) as info:
        parse_csr(data, **kwargs)
    assert info.value.kind is ErrorKind.BAD_CSR
    return info.value


# --- accepted ------------------------------------------------------------------------------------


def test_rsa_der_and_pem(rsa_key: rsa.RSAPrivateKey, rsa_csr_der: bytes) -> None:
    parsed = parse_csr(rsa_csr_der)
    assert isinstance(parsed, ParsedCsr)
    assert parsed.der == rsa_csr_der
    assert names_equal(parsed.subject, SUBJECT)
    assert parsed.public_key == rsa_key.public_key()
    pem = x509.load_der_x509_csr(rsa_csr_der).public_bytes(serialization.Encoding.PEM)
    assert parse_csr(pem).der == rsa_csr_der
    assert parse_csr(b"\n  " + pem.replace(b"\n", b"\r\n")).der == rsa_csr_der
    new_label = pem.replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    assert parse_csr(new_label).der == rsa_csr_der


@pytest.mark.parametrize("hash_algorithm", [hashes.SHA256(), hashes.SHA384(), hashes.SHA512()])
def test_rsa_sha2_and_ecdsa_sha2(
    rsa_key: rsa.RSAPrivateKey, p256_key: ec.EllipticCurvePrivateKey, hash_algorithm: hashes.HashAlgorithm
) -> None:
    assert parse_csr(_csr(rsa_key, hash_algorithm)).public_key == rsa_key.public_key()
    assert parse_csr(_csr(p256_key, hash_algorithm)).public_key == p256_key.public_key()


def test_rsa_pss(rsa_key: rsa.RSAPrivateKey) -> None:
    der = _csr(rsa_key, hashes.SHA256(), rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()), 32))
    assert x509.load_der_x509_csr(der).signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.10"
    assert parse_csr(der).public_key == rsa_key.public_key()


def test_requested_extensions_are_not_returned(rsa_key: rsa.RSAPrivateKey) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(SUBJECT)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("evil.example")]), critical=False)
        .sign(rsa_key, hashes.SHA256())
    )
    parsed = parse_csr(csr.public_bytes(serialization.Encoding.DER))
    assert {f.name for f in dataclasses.fields(parsed)} == {"der", "subject", "public_key"}


def test_weak_key_is_not_this_modules_business() -> None:
    small = rsa.generate_private_key(65537, 1024)  # noqa: S505  (deliberately weak: the case under test)
    assert parse_csr(_csr(small)).public_key.key_size == 1024  # type: ignore[union-attr]


# --- proof of possession -------------------------------------------------------------------------


def test_bit_flipped_subject(rsa_csr_der: bytes) -> None:
    where = rsa_csr_der.index(b"JAN JANSSENS")
    flipped = bytearray(rsa_csr_der)
    flipped[where] ^= 0x01  # J -> K: still a valid UTF8String
    assert "proof of possession" in _refused(bytes(flipped)).detail


def test_bit_flipped_signature(rsa_csr_der: bytes) -> None:
    flipped = bytearray(rsa_csr_der)
    flipped[-1] ^= 0x80
    _refused(bytes(flipped))


def test_signed_by_another_key(rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey) -> None:
    honest = _raw_csr(_spki(rsa_key), rsa_key, "sha256_rsa", hashes.SHA256())
    assert parse_csr(honest).public_key == rsa_key.public_key()
    forged = _raw_csr(_spki(rsa_key), other_rsa_key, "sha256_rsa", hashes.SHA256())
    assert "proof of possession" in _refused(forged).detail


def test_openssl_agrees_on_the_signature(tmp_path: Path, rsa_key: rsa.RSAPrivateKey,
                                         other_rsa_key: rsa.RSAPrivateKey) -> None:  # fmt: skip
    good = _raw_csr(_spki(rsa_key), rsa_key, "sha256_rsa", hashes.SHA256())
    forged = _raw_csr(_spki(rsa_key), other_rsa_key, "sha256_rsa", hashes.SHA256())
    for name, der, ok in (("good", good, True), ("forged", forged, False)):
        path = tmp_path / f"{name}.der"
        path.write_bytes(der)
        result = subprocess.run(
            ["openssl", "req", "-inform", "DER", "-in", str(path), "-verify", "-noout"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        # OpenSSL 3.0 exits 0 either way; its verdict is the message.
        assert ("verify OK" in result.stderr) is ok, result.stderr
        assert ("verify failure" in result.stderr) is not ok, result.stderr
        if ok:
            parse_csr(der)
        else:
            _refused(der)


# --- algorithms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "hash_algorithm"),
    [("sha1_rsa", hashes.SHA1()), ("md5_rsa", hashes.MD5()), ("sha224_rsa", hashes.SHA224())],  # noqa: S303  (deliberately weak: the case under test)
)
def test_weak_rsa_signature_algorithms(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, algorithm: str,
                                       hash_algorithm: hashes.HashAlgorithm) -> None:  # fmt: skip
    der = _raw_csr(_spki(rsa_key), rsa_key, algorithm, hash_algorithm)
    # The signature is genuine (OpenSSL says so); the algorithm alone is the reason to refuse.
    path = tmp_path / "req.der"
    path.write_bytes(der)
    verdict = subprocess.run(
        ["openssl", "req", "-inform", "DER", "-in", str(path), "-verify", "-noout"],
        capture_output=True, text=True, timeout=30, check=False,
    ).stderr  # fmt: skip
    assert "verify OK" in verdict
    assert "unsupported signature" in _refused(der).detail


def test_sha1_ecdsa(p256_key: ec.EllipticCurvePrivateKey) -> None:
    _refused(_raw_csr(_spki(p256_key), p256_key, "sha1_ecdsa", hashes.SHA1()))  # noqa: S303  (deliberately weak: the case under test)


def test_pss_with_sha1(rsa_key: rsa.RSAPrivateKey) -> None:
    params = {
        "hash_algorithm": {"algorithm": "sha1"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha1"}},
        "salt_length": 20,
        "trailer_field": "trailer_field_bc",
    }
    der = _raw_csr(_spki(rsa_key), rsa_key, "rsassa_pss", hashes.SHA1(), params, pss=True)  # noqa: S303  (deliberately weak: the case under test)
    _refused(der)


def test_algorithm_and_key_mismatch(rsa_key: rsa.RSAPrivateKey, p256_key: ec.EllipticCurvePrivateKey) -> None:
    # An ECDSA algorithm identifier over an RSA key (signed by the EC key) and the reverse.
    _refused(_raw_csr(_spki(rsa_key), p256_key, "sha256_ecdsa", hashes.SHA256()))
    _refused(_raw_csr(_spki(p256_key), rsa_key, "sha256_rsa", hashes.SHA256()))


def test_ed25519_key_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    der = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT).sign(key, None)
    assert "key type" in _refused(der.public_bytes(serialization.Encoding.DER)).detail


def test_invalid_public_keys(rsa_key: rsa.RSAPrivateKey, p256_key: ec.EllipticCurvePrivateKey) -> None:
    n = rsa_key.public_key().public_numbers().n
    even_e = asn1_keys.PublicKeyInfo(
        {
            "algorithm": {"algorithm": "rsa"},
            "public_key": asn1_keys.RSAPublicKey({"modulus": n, "public_exponent": 65538}),
        }
    ).dump()
    assert "invalid" in _refused(_raw_csr(even_e, rsa_key, "sha256_rsa", hashes.SHA256())).detail

    point = p256_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    off_curve = bytearray(point)
    off_curve[-1] ^= 0x01
    spki = asn1_keys.PublicKeyInfo.load(_spki(p256_key))
    bad_spki = asn1_keys.PublicKeyInfo(
        {"algorithm": spki["algorithm"], "public_key": bytes(off_curve)}
    ).dump()
    _refused(_raw_csr(bad_spki, p256_key, "sha256_ecdsa", hashes.SHA256()))


# --- input hygiene -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n",
        b"garbage bytes, not a CSR",
        bytes(range(256)),
        b"\x30\x82\xff\xff",
        b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n",
    ],
)
def test_garbage(data: bytes) -> None:
    _refused(data)


def test_not_bytes() -> None:
    with pytest.raises(DomainError) as info:
        parse_csr("a string")  # type: ignore[arg-type]
    assert info.value.kind is ErrorKind.BAD_CSR


def test_two_pem_blocks_and_trailing_data(rsa_csr_der: bytes) -> None:
    pem = x509.load_der_x509_csr(rsa_csr_der).public_bytes(serialization.Encoding.PEM)
    _refused(pem + pem)
    _refused(rsa_csr_der + b"\x00")


def test_oversized(rsa_csr_der: bytes) -> None:
    assert "limit" in _refused(rsa_csr_der, max_bytes=len(rsa_csr_der) - 1).detail
    assert parse_csr(rsa_csr_der, max_bytes=len(rsa_csr_der)).der == rsa_csr_der
    _refused(b"0" * 16385)


# --- fuzzing -------------------------------------------------------------------------------------

_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10_000), st.integers(0, 64)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, position, value in mutations:
        if not out:
            break
        i = position % len(out)
        if op == "flip":
            out[i] ^= 1 << value
        elif op == "set":
            out[i] = value
        elif op == "cut":
            del out[i : i + value + 1]
        else:
            out.insert(i, value)
    return bytes(out)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_mutation, min_size=1, max_size=4), as_pem=st.booleans())
def test_mutations_only_give_bad_csr_or_success(
    rsa_csr_der: bytes, mutations: list[tuple[str, int, int]], as_pem: bool
) -> None:
    source = (
        x509.load_der_x509_csr(rsa_csr_der).public_bytes(serialization.Encoding.PEM)
        if as_pem
        else rsa_csr_der
    )
    mutated = _mutate(source, mutations)
    try:
        parsed = parse_csr(mutated)
    except DomainError as exc:
        assert exc.kind is ErrorKind.BAD_CSR
    else:
        # Only mutations outside the signed content can survive (e.g. PEM white space).
        assert isinstance(parsed.public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        assert x509.load_der_x509_csr(parsed.der).is_signature_valid
