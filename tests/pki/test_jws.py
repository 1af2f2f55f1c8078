"""Compact JWS with x5c: round trips (RSA, P-256, P-384), an openssl cross-check, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.jws import (
    JWS_TYPE,
    MAX_TOKEN_BYTES,
    JwsParts,
    hash_for_public_key,
    sign_jws,
    verify_jws,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PAYLOAD = b'{"hello":"world"}'

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _self_signed(key: Key) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jws test")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _signer(key: Key) -> Callable[[bytes], bytes]:
    algorithm = hash_for_public_key(key.public_key())

    def sign(data: bytes) -> bytes:
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), algorithm)
        return key.sign(data, ec.ECDSA(algorithm))

    return sign


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _self_signed(key), key


@pytest.fixture(scope="module")
def other_rsa_pair() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _self_signed(key), key


@pytest.fixture(scope="module")
def p256_pair() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _self_signed(key), key


@pytest.fixture(scope="module")
def p384_pair() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    return _self_signed(key), key


@pytest.fixture(scope="module")
def token(rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> str:
    cert, key = rsa_pair
    return sign_jws(PAYLOAD, chain=[cert], sign=_signer(key))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], payload: bytes, key: Key | None) -> str:
    """A token built by hand (for headers sign_jws would never write), signed with ``key`` if given."""
    signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(payload)
    signature = b""
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(signature)


def _x5c(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def _kind(token: str) -> ErrorKind:
    with pytest.raises(DomainError) as caught:
        verify_jws(token)
    return caught.value.kind


# -- round trips ----------------------------------------------------------------------------------
def test_rsa_round_trip_returns_header_payload_and_chain(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey], token: str
) -> None:
    parts = verify_jws(token)
    assert isinstance(parts, JwsParts)
    assert parts.payload == PAYLOAD
    assert parts.header["alg"] == "RS256"
    assert parts.header["typ"] == JWS_TYPE
    assert set(parts.header) == {"alg", "typ", "x5c"}
    assert parts.chain == [rsa_pair[0]]


def test_chain_with_intermediates_is_carried_in_order(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
    other_rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    token = sign_jws(PAYLOAD, chain=[rsa_pair[0], other_rsa_pair[0]], sign=_signer(rsa_pair[1]))
    assert verify_jws(token).chain == [rsa_pair[0], other_rsa_pair[0]]
    # x5c is standard base64 of DER (RFC 7515 §4.1.6), not base64url.
    assert _header(token)["x5c"] == [_x5c(rsa_pair[0]), _x5c(other_rsa_pair[0])]


@pytest.mark.parametrize(("fixture", "alg", "size"), [("p256_pair", "ES256", 64), ("p384_pair", "ES384", 96)])
def test_ec_round_trip_converts_der_to_jose(
    request: pytest.FixtureRequest, fixture: str, alg: str, size: int
) -> None:
    cert, key = request.getfixturevalue(fixture)
    token = sign_jws(PAYLOAD, chain=[cert], sign=_signer(key))
    parts = verify_jws(token)
    assert parts.header["alg"] == alg
    assert parts.payload == PAYLOAD
    signature = token.split(".")[2]
    assert len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))) == size


@pytest.mark.interop
def test_openssl_verifies_the_rs256_signature(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey], token: str, tmp_path: Path
) -> None:
    header_b64, payload_b64, signature_b64 = token.split(".")
    (tmp_path / "input").write_bytes(f"{header_b64}.{payload_b64}".encode())
    (tmp_path / "sig").write_bytes(base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4)))
    (tmp_path / "pub.pem").write_bytes(
        rsa_pair[0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "input"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Verified OK" in result.stdout


# -- refusals -------------------------------------------------------------------------------------
def test_tampered_payload_is_refused(token: str) -> None:
    header, _, signature = token.split(".")
    other = _b64url(b'{"hello":"mallory"}')
    assert _kind(f"{header}.{other}.{signature}") is ErrorKind.BAD_SIGNATURE


def test_tampered_signature_is_refused(token: str) -> None:
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert _kind(f"{header}.{payload}.{flipped}") is ErrorKind.BAD_SIGNATURE


def test_alg_none_is_refused(rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    forged = _forge({"alg": "none", "typ": JWS_TYPE, "x5c": [_x5c(rsa_pair[0])]}, PAYLOAD, None)
    assert forged.endswith(".")
    assert _kind(forged) is ErrorKind.BAD_SIGNATURE


def test_hs256_keyed_with_the_public_key_is_refused(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    # The classic algorithm-confusion attack: HMAC with the (public) certificate key as the secret.
    cert = rsa_pair[0]
    header = {"alg": "HS256", "typ": JWS_TYPE, "x5c": [_x5c(cert)]}
    signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(PAYLOAD)
    secret = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert _kind(signing_input + "." + _b64url(mac)) is ErrorKind.BAD_SIGNATURE


def test_alg_that_does_not_match_the_key_type_is_refused(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    # A valid RSA signature, but the header claims ES256 (or PS256): only RS256 goes with an RSA key.
    for alg in ("ES256", "PS256", "RS512"):
        forged = _forge({"alg": alg, "typ": JWS_TYPE, "x5c": [_x5c(rsa_pair[0])]}, PAYLOAD, rsa_pair[1])
        assert _kind(forged) is ErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize("name", ["jwk", "jku", "x5u", "kid", "crit", "x5t#S256"])
def test_extra_header_parameters_are_refused(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey], name: str
) -> None:
    header = {"alg": "RS256", "typ": JWS_TYPE, "x5c": [_x5c(rsa_pair[0])], name: "https://evil.example/k"}
    assert _kind(_forge(header, PAYLOAD, rsa_pair[1])) is ErrorKind.BAD_SIGNATURE


def test_good_signature_with_a_control_header_is_accepted(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    # The forging helper itself produces acceptable tokens, so the refusals above are due to the change.
    header = {"alg": "RS256", "typ": JWS_TYPE, "x5c": [_x5c(rsa_pair[0])]}
    assert verify_jws(_forge(header, PAYLOAD, rsa_pair[1])).payload == PAYLOAD


@pytest.mark.parametrize(
    "x5c",
    [None, [], "notalist", ["!!!"], ["AAAA"], [42], ["QUJD"], ["QUJD="]],
    ids=["missing", "empty", "string", "not-base64", "not-der", "number", "short-der", "bad-padding"],
)
def test_bad_or_missing_x5c_is_refused(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey], x5c: Any
) -> None:
    header: dict[str, Any] = {"alg": "RS256", "typ": JWS_TYPE}
    if x5c is not None:
        header["x5c"] = x5c
    assert _kind(_forge(header, PAYLOAD, rsa_pair[1])) is ErrorKind.BAD_SIGNATURE


def test_x5c_leaf_that_did_not_sign_is_refused(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
    other_rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    header = {"alg": "RS256", "typ": JWS_TYPE, "x5c": [_x5c(other_rsa_pair[0])]}
    assert _kind(_forge(header, PAYLOAD, rsa_pair[1])) is ErrorKind.BAD_SIGNATURE


def test_too_long_chain_is_refused(rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    header = {"alg": "RS256", "typ": JWS_TYPE, "x5c": [_x5c(rsa_pair[0])] * 6}
    assert _kind(_forge(header, PAYLOAD, rsa_pair[1])) is ErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize("typ", [None, "JWT", "JOSE"])
def test_wrong_typ_is_refused(rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey], typ: str | None) -> None:
    header: dict[str, Any] = {"alg": "RS256", "x5c": [_x5c(rsa_pair[0])]}
    if typ is not None:
        header["typ"] = typ
    assert _kind(_forge(header, PAYLOAD, rsa_pair[1])) is ErrorKind.BAD_SIGNATURE


def test_duplicate_header_names_are_refused(rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    raw = f'{{"alg":"RS256","alg":"none","typ":"{JWS_TYPE}","x5c":["{_x5c(rsa_pair[0])}"]}}'.encode()
    signing_input = _b64url(raw) + "." + _b64url(PAYLOAD)
    signature = rsa_pair[1].sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert _kind(signing_input + "." + _b64url(signature)) is ErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b", "a.b.c.d", "!!!.$$$.%%%", "eyJ9.e30.", "e30.e30.e30", "....", "\u00e9.\u00e9.\u00e9"],
)
def test_garbage_tokens_are_refused(garbage: str) -> None:
    assert _kind(garbage) is ErrorKind.BAD_SIGNATURE


def test_padded_or_non_canonical_base64url_is_refused(token: str) -> None:
    header, payload, signature = token.split(".")
    assert _kind(f"{header}=.{payload}.{signature}") is ErrorKind.BAD_SIGNATURE
    # Same bytes, different encoding: a 256-byte signature leaves 4 unused low bits in its last
    # character; setting one decodes to the same signature but must still be refused.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(signature) % 4 == 2
    twin = alphabet[alphabet.index(signature[-1]) + 1]
    assert base64.urlsafe_b64decode(signature[:-1] + twin + "==") == base64.urlsafe_b64decode(
        signature + "=="
    )
    assert _kind(f"{header}.{payload}.{signature[:-1]}{twin}") is ErrorKind.BAD_SIGNATURE


def test_oversized_token_is_refused_before_parsing() -> None:
    assert _kind("a" * (MAX_TOKEN_BYTES + 1)) is ErrorKind.PAYLOAD_TOO_LARGE


def test_small_rsa_key_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - must be refused
    cert = _self_signed(key)
    with pytest.raises(DomainError) as caught:
        sign_jws(PAYLOAD, chain=[cert], sign=_signer_rsa_unchecked(key))
    assert caught.value.kind is ErrorKind.BAD_SIGNATURE
    header = {"alg": "RS256", "typ": JWS_TYPE, "x5c": [_x5c(cert)]}
    assert _kind(_forge(header, PAYLOAD, key)) is ErrorKind.BAD_SIGNATURE


def _signer_rsa_unchecked(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def test_unsupported_curve_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    with pytest.raises(DomainError) as caught:
        sign_jws(PAYLOAD, chain=[_self_signed(key)], sign=lambda d: key.sign(d, ec.ECDSA(hashes.SHA512())))
    assert caught.value.kind is ErrorKind.BAD_SIGNATURE


# -- signing side ---------------------------------------------------------------------------------
def test_sign_refuses_a_callback_whose_key_does_not_match_the_certificate(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
    other_rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    with pytest.raises(DomainError) as caught:
        sign_jws(PAYLOAD, chain=[rsa_pair[0]], sign=_signer(other_rsa_pair[1]))
    assert caught.value.kind is ErrorKind.BAD_SIGNATURE


def test_sign_refuses_an_empty_chain(rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    with pytest.raises(DomainError) as caught:
        sign_jws(PAYLOAD, chain=[], sign=_signer(rsa_pair[1]))
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_sign_refuses_an_oversized_payload(rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    with pytest.raises(DomainError) as caught:
        sign_jws(b"x" * MAX_TOKEN_BYTES, chain=[rsa_pair[0]], sign=_signer(rsa_pair[1]))
    assert caught.value.kind is ErrorKind.PAYLOAD_TOO_LARGE


def test_p384_callback_must_hash_with_sha384(
    p384_pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    cert, key = p384_pair
    assert isinstance(hash_for_public_key(key.public_key()), hashes.SHA384)
    with pytest.raises(DomainError) as caught:
        sign_jws(PAYLOAD, chain=[cert], sign=lambda d: key.sign(d, ec.ECDSA(hashes.SHA256())))
    assert caught.value.kind is ErrorKind.BAD_SIGNATURE


# -- robustness -----------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_any_one_character_change_is_refused_with_a_domain_error(
    token: str, position: int, replacement: str
) -> None:
    index = position % len(token)
    mutated = token[:index] + replacement + token[index + 1 :]
    if mutated == token:
        assert verify_jws(mutated).payload == PAYLOAD
        return
    with pytest.raises(DomainError) as caught:
        verify_jws(mutated)
    assert caught.value.kind is ErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize("serial", [0, -5])
def test_x5c_certificate_with_a_non_positive_serial_is_refused(
    rsa_pair: tuple[x509.Certificate, rsa.RSAPrivateKey], serial: int
) -> None:
    """RFC 5280 §4.1.2.2: refused by us, not left to cryptography's deprecation warning."""
    import warnings

    from asn1crypto import x509 as asn1_x509

    cert, key = rsa_pair
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    parsed["tbs_certificate"]["serial_number"] = serial
    tbs = parsed["tbs_certificate"].dump(force=True)
    parsed["signature_value"] = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    bad = base64.b64encode(parsed.dump(force=True)).decode()
    token = _forge({"alg": "RS256", "typ": "ehcerts+jws", "x5c": [bad]}, b"{}", key)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning may escape either
        with pytest.raises(DomainError) as caught:
            verify_jws(token)
    assert caught.value.kind is ErrorKind.BAD_SIGNATURE
    assert "serial number" in caught.value.detail
