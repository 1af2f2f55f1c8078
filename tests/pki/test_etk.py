"""ETK: registration challenge, ToBeRegistered certificate, issuing, parsing and validating (incl. the
real ETEE fixtures and the negative ETKs)."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.cms import ViolationCode
from ehealth_certs.pki.etk import (
    AUTHENTICATION,
    ENCRYPTION,
    RA,
    Etk,
    assemble_etk,
    build_to_be_registered,
    check_to_be_registered,
    make_challenge,
    parse_etk,
    serial_from_secret,
    solve_challenge,
    validate_etk,
)
from ehealth_certs.pki.issuer import issue_etk
from ehealth_certs.pki.signing import SoftwareSigner
from tests.pki.etee_pki import (
    NOW,
    OPENSSL,
    ca2,
    ca_old,
    encryption_ku,
    fixture_bytes,
    mini_pki,
    pem,
    rsa_key,
)


def at(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------
# Challenge
# ---------------------------------------------------------------------------------------------------


def test_challenge_round_trip() -> None:
    key = rsa_key("enc-new")
    challenge, secret = make_challenge(key.public_key())
    assert len(secret) == 16
    assert len(challenge) == 256 + 32  # RSA-2048 block + SHA-256
    assert challenge[-32:] == hashlib.sha256(secret).digest()
    assert solve_challenge(challenge, key) == secret
    assert serial_from_secret(b"\x00" * 15 + b"\x01") == 1  # unsigned, like new BigInteger(1, S)


def test_challenge_with_tampered_hash_is_refused() -> None:
    key = rsa_key("enc-new")
    challenge, _ = make_challenge(key.public_key())
    with pytest.raises(DomainError) as err:
        solve_challenge(challenge[:-1] + bytes([challenge[-1] ^ 1]), key)
    assert err.value.kind is ErrorKind.CHALLENGE_INVALID


def test_challenge_for_another_key_is_refused() -> None:
    challenge, _ = make_challenge(rsa_key("enc-new").public_key())
    with pytest.raises(DomainError) as err:
        solve_challenge(challenge, rsa_key("other"))
    assert err.value.kind is ErrorKind.CHALLENGE_INVALID


def test_challenge_of_wrong_length_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        solve_challenge(b"\x00" * 100, rsa_key("enc-new"))
    assert err.value.kind is ErrorKind.CHALLENGE_INVALID


# ---------------------------------------------------------------------------------------------------
# ToBeRegistered
# ---------------------------------------------------------------------------------------------------

SERIAL = 0x0521662CDAF0F4C6A6144640A406CD9D


def _tbr() -> tuple[x509.Certificate, x509.Certificate, rsa.RSAPrivateKey]:
    carol = mini_pki().people["Carol"]
    enc = rsa_key("enc-new")
    return build_to_be_registered(carol.cert, carol.key, enc.public_key(), SERIAL), carol.cert, enc


def test_to_be_registered_has_the_reference_shape() -> None:
    cert, auth, enc = _tbr()
    assert cert.serial_number == SERIAL
    assert cert.issuer.public_bytes() == cert.subject.public_bytes() == auth.subject.public_bytes()
    assert cert.not_valid_before_utc == auth.not_valid_before_utc
    assert cert.not_valid_after_utc == auth.not_valid_after_utc
    exts = list(cert.extensions)
    assert len(exts) == 1 and exts[0].critical
    assert exts[0].value == encryption_ku
    assert cert.signature_algorithm_oid == auth.signature_algorithm_oid
    check_to_be_registered(cert, auth, SERIAL, enc.public_key())  # does not raise


def test_to_be_registered_wrong_serial_is_challenge_invalid() -> None:
    cert, auth, enc = _tbr()
    with pytest.raises(DomainError) as err:
        check_to_be_registered(cert, auth, SERIAL + 1, enc.public_key())
    assert err.value.kind is ErrorKind.CHALLENGE_INVALID


def _variant(
    auth: x509.Certificate, signer: rsa.RSAPrivateKey, enc: rsa.RSAPublicKey, **change: object
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(change.get("subject", auth.subject))  # type: ignore[arg-type]
        .issuer_name(change.get("issuer", auth.subject))  # type: ignore[arg-type]
        .serial_number(SERIAL)
        .not_valid_before(auth.not_valid_before_utc)
        .not_valid_after(change.get("end", auth.not_valid_after_utc))  # type: ignore[arg-type]
        .public_key(enc)
        .add_extension(change.get("ku", encryption_ku), critical=bool(change.get("critical", True)))  # type: ignore[arg-type]
    )
    if change.get("extra"):
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    return builder.sign(signer, hashes.SHA256())


@pytest.mark.parametrize(
    ("change", "fact"),
    [
        ({"issuer": x509.Name.from_rfc4514_string("CN=Someone")}, "issuer"),
        ({"subject": x509.Name.from_rfc4514_string("CN=Someone")}, "subject"),
        ({"end": NOW + timedelta(days=3000)}, "validity"),
        ({"extra": True}, "exactly one extension"),
        ({"critical": False}, "not critical"),
        (
            {"ku": x509.KeyUsage(True, False, True, True, False, False, False, False, False)},
            "KeyUsage is not exactly",
        ),
        ({"signer": "other"}, "signature does not verify"),
        ({"enc": "other"}, "not the key the challenge"),
    ],
)
def test_to_be_registered_each_fact_is_checked(change: dict[str, object], fact: str) -> None:
    carol = mini_pki().people["Carol"]
    enc = rsa_key("enc-new")
    signer = rsa_key("other") if change.pop("signer", None) else carol.key
    key = rsa_key("other").public_key() if change.pop("enc", None) else enc.public_key()
    cert = _variant(carol.cert, signer, key, **change)
    with pytest.raises(DomainError) as err:
        check_to_be_registered(cert, carol.cert, SERIAL, enc.public_key())
    assert err.value.kind is ErrorKind.BAD_REQUEST
    assert fact in err.value.detail


def test_to_be_registered_refuses_small_encryption_key() -> None:
    carol = mini_pki().people["Carol"]
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point of the test)
    with pytest.raises(DomainError) as err:
        build_to_be_registered(carol.cert, carol.key, small.public_key(), SERIAL)
    assert err.value.kind is ErrorKind.BAD_REQUEST


# ---------------------------------------------------------------------------------------------------
# Issuing and validating our own ETKs
# ---------------------------------------------------------------------------------------------------


def _our_etk() -> tuple[bytes, x509.Certificate]:
    pki = mini_pki()
    tbr, auth, _ = _tbr()
    etk = issue_etk(SoftwareSigner(pki.ra.key), pki.ra.cert, tbr, auth, [pki.root])
    return etk, tbr


def test_issued_etk_parses_and_validates() -> None:
    der, tbr = _our_etk()
    pki = mini_pki()
    etk = parse_etk(der)
    assert etk.encryption_certificate == tbr
    assert etk.authentication_certificate == pki.people["Carol"].cert
    assert etk.ra_certificate == pki.ra.cert
    assert etk.ca_chain == [pki.root]
    assert etk.signature_valid and etk.digest_algorithm == "sha256"
    assert validate_etk(etk, trusted_cas=[pki.root], now=NOW, trusted_ra=[pki.ra.cert]) == []


def test_issued_etk_has_no_signed_attributes_and_openssl_verifies_it(tmp_path: Path) -> None:
    der, tbr = _our_etk()
    (tmp_path / "etk.der").write_bytes(der)
    (tmp_path / "root.pem").write_bytes(pem(mini_pki().root))
    out = subprocess.run(
        [
            OPENSSL,
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "etk.der"),
            "-binary",
            "-CAfile",
            str(tmp_path / "root.pem"),
            "-purpose",
            "any",
            "-out",
            str(tmp_path / "content.der"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "content.der").read_bytes() == tbr.public_bytes(serialization.Encoding.DER)
    signer = asn1_cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    assert signer["signed_attrs"].native is None
    assert signer["signature_algorithm"]["algorithm"].native == "rsassa_pkcs1v15"


def test_tampered_etk_signature_is_reported() -> None:
    der, _ = _our_etk()
    etk = parse_etk(der)
    forged = Etk(
        etk.encoded,
        etk.encryption_certificate,
        etk.authentication_certificate,
        etk.ca_chain,
        etk.ra_certificate,
        False,
        etk.digest_algorithm,
    )
    codes = {(v.code, v.target) for v in validate_etk(forged, trusted_cas=[mini_pki().root], now=NOW)}
    assert (ViolationCode.SIGNATURE_INVALID, RA) in codes


def test_etk_signed_by_an_unknown_ra_is_reported() -> None:
    der, _ = _our_etk()
    violations = validate_etk(parse_etk(der), trusted_cas=[mini_pki().root], now=NOW, trusted_ra=[ca2()])
    assert [(v.code, v.target) for v in violations] == [(ViolationCode.UNTRUSTED_ISSUER, RA)]


def test_assemble_refuses_a_signature_that_does_not_verify() -> None:
    pki = mini_pki()
    tbr, auth, _ = _tbr()
    with pytest.raises(DomainError) as err:
        assemble_etk(tbr.tbs_certificate_bytes, b"\x00" * 256, pki.ra.cert, [auth])
    assert err.value.kind is ErrorKind.BAD_REQUEST
    with pytest.raises(DomainError) as err:
        assemble_etk(tbr.public_bytes(serialization.Encoding.DER), b"\x00" * 256, pki.ra.cert, [auth])
    assert err.value.kind is ErrorKind.BAD_SIGNATURE


def test_etk_expired_auth_and_untrusted_chain() -> None:
    der, _ = _our_etk()
    etk = parse_etk(der)
    later = NOW + timedelta(days=400)
    found = {(v.code, v.target) for v in validate_etk(etk, trusted_cas=[mini_pki().root], now=later)}
    assert (ViolationCode.NOT_TIME_VALID, ENCRYPTION) in found
    assert (ViolationCode.NOT_TIME_VALID, AUTHENTICATION) in found
    untrusted = {(v.code, v.target) for v in validate_etk(etk, trusted_cas=[ca2()], now=NOW)}
    assert untrusted == {(ViolationCode.UNTRUSTED_ISSUER, AUTHENTICATION)}


@pytest.mark.parametrize("data", [b"", b"garbage", fixture_bytes("ca/CA2.cer")])
def test_not_an_etk_is_malformed(data: bytes) -> None:
    with pytest.raises(DomainError) as err:
        parse_etk(data)
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE


# ---------------------------------------------------------------------------------------------------
# Real fixtures
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "serial"),
    [("bob/bobs_public_key.etk", 825373489), ("alice/alices_public_key.etk", 1204544406096826217265)],
)
def test_fixture_etks_validate_with_sha1_allowed(rel: str, serial: int) -> None:
    etk = parse_etk(fixture_bytes(rel))
    assert etk.encryption_certificate.serial_number == serial
    assert etk.ra_certificate.subject.rfc4514_string().startswith("C=BE,O=Federal Government")
    assert "ETK-RA" in etk.ra_certificate.subject.rfc4514_string()
    assert validate_etk(etk, trusted_cas=[ca2()], now=at(2024), allow_sha1=True) == []
    strict = {v.code for v in validate_etk(etk, trusted_cas=[ca2()], now=at(2024))}
    assert strict == {ViolationCode.ALGORITHM_NOT_ALLOWED}


@pytest.mark.parametrize(
    ("rel", "when", "expected"),
    [
        ("etk/expired_encr.etk", at(2020), ViolationCode.NOT_TIME_VALID),
        ("etk/invalid_encrkey_usage.etk", at(2015), ViolationCode.WRONG_KEY_USAGE),
        ("etk/invalid_key_size.etk", at(2015), ViolationCode.KEY_TOO_SMALL),
    ],
)
def test_negative_fixture_etks(rel: str, when: datetime, expected: ViolationCode) -> None:
    etk = parse_etk(fixture_bytes(rel))
    assert etk.signature_valid  # the RA signed them: only the content is wrong
    violations = validate_etk(etk, trusted_cas=[ca2(), ca_old()], now=when, allow_sha1=True)
    assert (expected, ENCRYPTION) in {(v.code, v.target) for v in violations}


def test_expired_fixture_is_valid_inside_its_validity() -> None:
    etk = parse_etk(fixture_bytes("etk/expired_encr.etk"))
    assert validate_etk(etk, trusted_cas=[ca2()], now=at(2014, 3, 15), allow_sha1=True) == []


def test_kgss_etk_validates_as_of_2011() -> None:
    etk = parse_etk(fixture_bytes("etk/kgss.etk"))
    assert etk.encryption_certificate.serial_number == 0x0521662CDAF0F4C6A6144640A406CD9D
    assert "KGSS" in etk.authentication_certificate.subject.rfc4514_string()
    assert "Registration" in etk.ra_certificate.subject.rfc4514_string()
    # The TRAIL test root is not among the fixtures on its own: anchor on the copy the ETK carries.
    root = next(c for c in etk.ca_chain if c.issuer == c.subject)
    assert "TRAIL eHealth Root CA TEST" in root.subject.rfc4514_string()
    assert validate_etk(etk, trusted_cas=[root], now=at(2011, 6, 1), allow_sha1=True) == []
    late = {v.code for v in validate_etk(etk, trusted_cas=[root], now=at(2016), allow_sha1=True)}
    assert ViolationCode.NOT_TIME_VALID in late


def test_issue_etk_refuses_a_non_pkcs1_ra_signer() -> None:
    pki = mini_pki()
    tbr, auth, _ = _tbr()
    with pytest.raises(DomainError) as err:
        issue_etk(SoftwareSigner.generate_p256(), pki.ra.cert, tbr, auth, [pki.root])
    assert err.value.kind is ErrorKind.CONFIGURATION


def test_proxy_certificate_not_signed_by_the_auth_key_is_reported() -> None:
    pki = mini_pki()
    carol, dave = pki.people["Carol"], pki.people["Dave"]
    forged = _variant(carol.cert, dave.key, rsa_key("enc-new").public_key())  # Carol's name, Dave's signature
    etk = parse_etk(issue_etk(SoftwareSigner(pki.ra.key), pki.ra.cert, forged, carol.cert, [pki.root]))
    found = [(v.code, v.target) for v in validate_etk(etk, trusted_cas=[pki.root], now=NOW)]
    assert found == [(ViolationCode.ISSUER_SIGNATURE_INVALID, ENCRYPTION)]


def test_encryption_dn_must_equal_the_auth_dn() -> None:
    pki = mini_pki()
    carol, dave = pki.people["Carol"], pki.people["Dave"]
    tbr = build_to_be_registered(dave.cert, dave.key, rsa_key("enc-new").public_key(), SERIAL)
    etk = parse_etk(issue_etk(SoftwareSigner(pki.ra.key), pki.ra.cert, tbr, carol.cert, [pki.root]))
    assert etk.authentication_certificate == carol.cert  # the only leaf present
    found = {(v.code, v.target) for v in validate_etk(etk, trusted_cas=[pki.root], now=NOW)}
    assert (ViolationCode.DN_MISMATCH, ENCRYPTION) in found
    assert (ViolationCode.ISSUER_SIGNATURE_INVALID, ENCRYPTION) in found  # signed by Dave, not Carol
