"""Server-side eID verification: test eIDs (checked by openssl), both roles, and every refusal."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ehealth_certs.client.eid import FileEid, signed_request
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identity.eid import EidVerifier, SignedRequest, load_citizen_ca
from ehealth_certs.pki.eid_dev import TestEid, create_citizen_ca, create_test_eid
from ehealth_certs.pki.jws import JWS_TYPE, sign_jws
from tests.paths import DATA

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SSIN = "85073003328"
FIXTURES = DATA / "etee-fixtures" / "ca"

CA = tuple[x509.Certificate, rsa.RSAPrivateKey]


@pytest.fixture(scope="module")
def citizen_ca() -> CA:
    return create_citizen_ca(now=T0)


@pytest.fixture(scope="module")
def other_citizen_ca() -> CA:
    return create_citizen_ca(now=T0, name="Another Test Citizen CA")


@pytest.fixture(scope="module")
def eid(citizen_ca: CA) -> TestEid:
    return create_test_eid(ssin=SSIN, first_name="Alice Geldige", last_name="Specimen", ca=citizen_ca, now=T0)


@pytest.fixture(scope="module")
def card(eid: TestEid) -> FileEid:
    return FileEid(citizen_ca=eid.citizen_ca, authentication=eid.authentication, signature=eid.signature)


@pytest.fixture(scope="module")
def verifier(citizen_ca: CA) -> EidVerifier:
    return EidVerifier([citizen_ca[0]])


def _refused(
    verifier: EidVerifier, token: str, *, now: datetime = T0, role: str = "authentication"
) -> ErrorKind:
    with pytest.raises(DomainError) as caught:
        verifier.verify(token, now=now, role=role)
    return caught.value.kind


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign_payload(eid: TestEid, payload: Any) -> str:
    """A token over an arbitrary payload, signed with the Authentication key (for payload-shape tests)."""
    cert, key = eid.authentication
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return sign_jws(raw, chain=[cert], sign=lambda d: key.sign(d, padding.PKCS1v15(), hashes.SHA256()))


# -- the test eID itself --------------------------------------------------------------------------
def test_test_eid_certificates_look_like_a_real_card(eid: TestEid) -> None:
    auth, _ = eid.authentication
    sign, _ = eid.signature
    for cert, role in ((auth, "Authentication"), (sign, "Signature")):
        subject = cert.subject
        assert [a.oid for a in subject] == [
            NameOID.COUNTRY_NAME,
            NameOID.COMMON_NAME,
            NameOID.SURNAME,
            NameOID.GIVEN_NAME,
            NameOID.SERIAL_NUMBER,
        ]
        assert (
            subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"Alice Geldige Specimen ({role})"
        )
        assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == SSIN
        assert cert.issuer == eid.citizen_ca.subject
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    auth_ku = auth.extensions.get_extension_for_class(x509.KeyUsage)
    sign_ku = sign.extensions.get_extension_for_class(x509.KeyUsage)
    assert auth_ku.critical and auth_ku.value.digital_signature and not auth_ku.value.content_commitment
    assert sign_ku.critical and sign_ku.value.content_commitment and not sign_ku.value.digital_signature
    eku = auth.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ca_bc = eid.citizen_ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_bc.critical and ca_bc.value.ca
    assert eid.authentication[0].not_valid_after_utc == T0 + timedelta(days=3650) - timedelta(seconds=1)


@pytest.mark.interop
def test_openssl_verifies_the_test_eid_and_shows_the_ssin(eid: TestEid, tmp_path: Path) -> None:
    pem = serialization.Encoding.PEM
    (tmp_path / "citizen_ca.pem").write_bytes(eid.citizen_ca.public_bytes(pem))
    for name, (cert, _) in (("auth.pem", eid.authentication), ("sign.pem", eid.signature)):
        (tmp_path / name).write_bytes(cert.public_bytes(pem))
        verified = subprocess.run(
            ["openssl", "verify", "-attime", str(int((T0 + timedelta(days=1)).timestamp())),
             "-CAfile", "citizen_ca.pem", name],
            cwd=tmp_path, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stderr
        assert f"{name}: OK" in verified.stdout
        text = subprocess.run(
            ["openssl", "x509", "-in", name, "-noout", "-text", "-nameopt", "RFC2253"],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert f"serialNumber={SSIN}" in text
        assert "SN=Specimen" in text and "GN=Alice Geldige" in text and "C=BE" in text
    auth_text = subprocess.run(
        ["openssl", "x509", "-in", "auth.pem", "-noout", "-ext", "keyUsage,extendedKeyUsage"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Digital Signature" in auth_text and "TLS Web Client Authentication" in auth_text
    sign_text = subprocess.run(
        ["openssl", "x509", "-in", "sign.pem", "-noout", "-ext", "keyUsage"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Non Repudiation" in sign_text and "Digital Signature" not in sign_text


@pytest.mark.interop
def test_openssl_refuses_the_test_eid_under_another_citizen_ca(
    eid: TestEid, other_citizen_ca: CA, tmp_path: Path
) -> None:
    pem = serialization.Encoding.PEM
    (tmp_path / "other.pem").write_bytes(other_citizen_ca[0].public_bytes(pem))
    (tmp_path / "auth.pem").write_bytes(eid.authentication[0].public_bytes(pem))
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", "other.pem", "auth.pem"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0


def test_create_test_eid_refuses_bad_input(citizen_ca: CA, other_citizen_ca: CA) -> None:
    cases: list[tuple[dict[str, Any], ErrorKind]] = [
        ({"ssin": "8507300332"}, ErrorKind.BAD_IDENTIFIER),
        ({"ssin": "85.07.30-033.28"}, ErrorKind.BAD_IDENTIFIER),
        ({"last_name": " "}, ErrorKind.BAD_REQUEST),
        ({"valid_days": 0}, ErrorKind.BAD_REQUEST),
        ({"valid_days": 20 * 365 + 1}, ErrorKind.BAD_REQUEST),  # would outlive the CA
        ({"ca": (citizen_ca[0], other_citizen_ca[1])}, ErrorKind.BAD_REQUEST),  # key/cert mismatch
        ({"now": T0 - timedelta(days=1)}, ErrorKind.BAD_REQUEST),  # CA not yet valid
    ]
    for change, kind in cases:
        arguments: dict[str, Any] = {
            "ssin": SSIN,
            "first_name": "A",
            "last_name": "B",
            "ca": citizen_ca,
            "now": T0,
        }
        arguments.update(change)
        with pytest.raises(DomainError) as caught:
            create_test_eid(**arguments)
        assert caught.value.kind is kind, change


# -- round trips ----------------------------------------------------------------------------------
def test_authentication_round_trip(verifier: EidVerifier, card: FileEid, eid: TestEid) -> None:
    token = signed_request(card, "authentication", {"operation": "GetActorQualities", "ssin": SSIN}, now=T0)
    result = verifier.verify(token, now=T0 + timedelta(seconds=3), role="authentication")
    assert isinstance(result, SignedRequest)
    assert result.identity.ssin == SSIN
    assert result.identity.first_name == "Alice Geldige"
    assert result.identity.last_name == "Specimen"
    assert result.identity.role == "authentication"
    assert result.identity.certificate == eid.authentication[0]
    assert result.body == {"operation": "GetActorQualities", "ssin": SSIN}
    assert result.issue_instant == T0
    assert result.request_id.startswith("_") and len(result.request_id) == 37


def test_signature_round_trip(verifier: EidVerifier, card: FileEid, eid: TestEid) -> None:
    token = signed_request(card, "signature", {"operation": "Revoke", "publicKeyIdentifier": "abc"}, now=T0)
    result = verifier.verify(token, now=T0, role="signature")
    assert result.identity.role == "signature"
    assert result.identity.certificate == eid.signature[0]
    assert result.identity.ssin == SSIN
    assert result.body["operation"] == "Revoke"


def test_request_ids_are_unique(card: FileEid, verifier: EidVerifier) -> None:
    ids = {verifier.verify(signed_request(card, "authentication", {}, now=T0), now=T0, role="authentication")
           .request_id for _ in range(5)}  # fmt: skip
    assert len(ids) == 5


def test_trust_comes_from_configuration_not_from_x5c(
    eid: TestEid, other_citizen_ca: CA, verifier: EidVerifier
) -> None:
    # A card from an unconfigured Citizen CA is refused even when its token carries that CA in x5c.
    stranger = create_test_eid(ssin=SSIN, first_name="Eve", last_name="Stranger", ca=other_citizen_ca, now=T0)
    stranger_card = FileEid(
        citizen_ca=stranger.citizen_ca, authentication=stranger.authentication, signature=stranger.signature
    )
    token = signed_request(stranger_card, "authentication", {}, now=T0)
    assert _refused(verifier, token) is ErrorKind.UNTRUSTED_SIGNER
    # The same token verifies once that CA is configured, so the refusal above is about trust only.
    assert EidVerifier([other_citizen_ca[0]]).verify(
        token, now=T0, role="authentication"
    ).identity.last_name == ("Stranger")


def test_impostor_ca_with_the_trusted_name_is_refused(verifier: EidVerifier, citizen_ca: CA) -> None:
    impostor = create_citizen_ca(now=T0)  # same default name, different key
    assert impostor[0].subject == citizen_ca[0].subject
    forged = create_test_eid(ssin=SSIN, first_name="Alice Geldige", last_name="Specimen", ca=impostor, now=T0)
    card = FileEid(citizen_ca=citizen_ca[0], authentication=forged.authentication, signature=forged.signature)
    token = signed_request(card, "authentication", {}, now=T0)
    assert _refused(verifier, token) is ErrorKind.UNTRUSTED_SIGNER


def test_several_trusted_cas_are_searched(citizen_ca: CA, other_citizen_ca: CA, card: FileEid) -> None:
    both = EidVerifier([other_citizen_ca[0], citizen_ca[0]])
    token = signed_request(card, "signature", {}, now=T0)
    assert both.verify(token, now=T0, role="signature").identity.ssin == SSIN


# -- validity -------------------------------------------------------------------------------------
def test_validity_boundaries_are_inclusive(verifier: EidVerifier, card: FileEid, eid: TestEid) -> None:
    not_before = eid.authentication[0].not_valid_before_utc
    not_after = eid.authentication[0].not_valid_after_utc
    for at in (not_before, not_after):
        token = signed_request(card, "authentication", {}, now=at)
        assert verifier.verify(token, now=at, role="authentication").identity.ssin == SSIN


def test_expired_leaf_is_refused(verifier: EidVerifier, card: FileEid, eid: TestEid) -> None:
    later = eid.authentication[0].not_valid_after_utc + timedelta(seconds=1)
    token = signed_request(card, "authentication", {}, now=later)
    assert _refused(verifier, token, now=later) is ErrorKind.EXPIRED


def test_not_yet_valid_leaf_is_refused(verifier: EidVerifier, card: FileEid, eid: TestEid) -> None:
    earlier = eid.authentication[0].not_valid_before_utc - timedelta(seconds=1)
    token = signed_request(card, "authentication", {}, now=earlier)
    assert _refused(verifier, token, now=earlier) is ErrorKind.EXPIRED


def test_expired_citizen_ca_is_refused() -> None:
    short_ca = create_citizen_ca(now=T0, name="Short-lived Test Citizen CA", valid_days=30)
    short = create_test_eid(ssin=SSIN, first_name="A", last_name="B", ca=short_ca, now=T0, valid_days=30)
    card = FileEid(
        citizen_ca=short.citizen_ca, authentication=short.authentication, signature=short.signature
    )
    after = T0 + timedelta(days=30)
    token = signed_request(card, "authentication", {}, now=after)
    with pytest.raises(DomainError) as caught:
        EidVerifier([short_ca[0]]).verify(token, now=after, role="authentication")
    assert caught.value.kind is ErrorKind.EXPIRED
    assert "Citizen CA" in caught.value.detail


# -- roles ----------------------------------------------------------------------------------------
def test_signature_key_where_authentication_is_required_is_refused(
    verifier: EidVerifier, card: FileEid
) -> None:
    token = signed_request(card, "signature", {}, now=T0)
    assert _refused(verifier, token, role="authentication") is ErrorKind.FORBIDDEN


def test_authentication_key_where_signature_is_required_is_refused(
    verifier: EidVerifier, card: FileEid
) -> None:
    token = signed_request(card, "authentication", {}, now=T0)
    assert _refused(verifier, token, role="signature") is ErrorKind.FORBIDDEN


def test_unknown_role_is_a_programming_error(verifier: EidVerifier, card: FileEid) -> None:
    token = signed_request(card, "authentication", {}, now=T0)
    with pytest.raises(ValueError, match="role"):
        verifier.verify(token, now=T0, role="admin")


# -- the JWS --------------------------------------------------------------------------------------
def test_tampered_payload_is_refused(verifier: EidVerifier, card: FileEid) -> None:
    header, payload, signature = signed_request(card, "authentication", {"ssin": SSIN}, now=T0).split(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(
        SSIN.encode(), b"79021802145"
    )
    assert _refused(verifier, f"{header}.{_b64url(decoded)}.{signature}") is ErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_alg_swap_in_header_is_refused(verifier: EidVerifier, card: FileEid, alg: str) -> None:
    header, payload, signature = signed_request(card, "authentication", {}, now=T0).split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    decoded["alg"] = alg
    new_header = _b64url(json.dumps(decoded).encode())
    assert _refused(verifier, f"{new_header}.{payload}.{signature}") is ErrorKind.BAD_SIGNATURE
    assert _refused(verifier, f"{new_header}.{payload}.") is ErrorKind.BAD_SIGNATURE


def test_missing_x5c_is_refused(verifier: EidVerifier, eid: TestEid) -> None:
    _, key = eid.authentication
    signing_input = _b64url(json.dumps({"alg": "RS256", "typ": JWS_TYPE}).encode()) + "." + _b64url(b"{}")
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert _refused(verifier, signing_input + "." + _b64url(signature)) is ErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "x" * 100])
def test_garbage_token_is_refused(verifier: EidVerifier, garbage: str) -> None:
    assert _refused(verifier, garbage) is ErrorKind.BAD_SIGNATURE


# -- issueInstant and payload shape ---------------------------------------------------------------
def test_issue_instant_window_is_plus_minus_max_age(verifier: EidVerifier, card: FileEid) -> None:
    signed_at = T0 + timedelta(hours=1)  # away from the certificates' notBefore
    token = signed_request(card, "authentication", {}, now=signed_at)
    for at in (signed_at - timedelta(minutes=5), signed_at + timedelta(minutes=5)):
        assert verifier.verify(token, now=at, role="authentication").issue_instant == signed_at
    # A wider window set by the caller is honoured.
    later = signed_at + timedelta(minutes=9)
    assert verifier.verify(token, now=later, role="authentication", max_age=timedelta(minutes=10))
    assert _refused(verifier, token, now=later) is ErrorKind.BAD_REQUEST


def test_too_old_issue_instant_is_refused(verifier: EidVerifier, card: FileEid) -> None:
    token = signed_request(card, "authentication", {}, now=T0)
    assert _refused(verifier, token, now=T0 + timedelta(minutes=5, seconds=1)) is ErrorKind.BAD_REQUEST


def test_future_issue_instant_is_refused(verifier: EidVerifier, card: FileEid) -> None:
    token = signed_request(card, "authentication", {}, now=T0 + timedelta(minutes=5, seconds=1))
    assert _refused(verifier, token) is ErrorKind.BAD_REQUEST


GOOD_ID = "_4f7c2d6e-2b1a-4c47-9d0e-0c5f3f1f8a11"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"id":"_abcdefgh","id":"_abcdefgh","issueInstant":"2025-03-01T12:00:00Z","body":{}}',
        [],
        {"id": GOOD_ID, "issueInstant": "2025-03-01T12:00:00Z"},
        {"id": GOOD_ID, "issueInstant": "2025-03-01T12:00:00Z", "body": {}, "extra": 1},
        {"id": GOOD_ID, "issueInstant": "2025-03-01T12:00:00Z", "body": []},
        {"id": "no-underscore", "issueInstant": "2025-03-01T12:00:00Z", "body": {}},
        {"id": 42, "issueInstant": "2025-03-01T12:00:00Z", "body": {}},
        {"id": GOOD_ID, "issueInstant": "2025-03-01T12:00:00", "body": {}},
        {"id": GOOD_ID, "issueInstant": "2025-03-01T13:00:00+01:00", "body": {}},
        {"id": GOOD_ID, "issueInstant": "2025-02-30T12:00:00Z", "body": {}},
        {"id": GOOD_ID, "issueInstant": 1740830400, "body": {}},
    ],
    ids=["not-json", "duplicate-id", "array", "no-body", "extra-key", "body-array", "bad-id", "id-number",
         "naive-time", "offset-time", "impossible-date", "epoch-time"],
)  # fmt: skip
def test_bad_payload_shape_is_refused(verifier: EidVerifier, eid: TestEid, payload: Any) -> None:
    assert _refused(verifier, _sign_payload(eid, payload)) is ErrorKind.BAD_REQUEST


def test_well_formed_handmade_payload_is_accepted(verifier: EidVerifier, eid: TestEid) -> None:
    payload = {"id": GOOD_ID, "issueInstant": "2025-03-01T12:00:00.250Z", "body": {"k": "v"}}
    result = verifier.verify(_sign_payload(eid, payload), now=T0, role="authentication")
    assert result.request_id == GOOD_ID
    assert result.issue_instant == T0 + timedelta(milliseconds=250)


# -- the person -----------------------------------------------------------------------------------
def test_ssin_with_wrong_check_digits_is_refused(citizen_ca: CA, verifier: EidVerifier) -> None:
    bad = create_test_eid(ssin="85073003329", first_name="A", last_name="B", ca=citizen_ca, now=T0)
    card = FileEid(citizen_ca=bad.citizen_ca, authentication=bad.authentication, signature=bad.signature)
    assert _refused(verifier, signed_request(card, "authentication", {}, now=T0)) is ErrorKind.BAD_IDENTIFIER


def test_person_without_given_name_is_accepted(citizen_ca: CA, verifier: EidVerifier) -> None:
    mononym = create_test_eid(ssin="79021802145", first_name="", last_name="Madonna", ca=citizen_ca, now=T0)
    assert not mononym.authentication[0].subject.get_attributes_for_oid(NameOID.GIVEN_NAME)
    card = FileEid(
        citizen_ca=mononym.citizen_ca, authentication=mononym.authentication, signature=mononym.signature
    )
    identity = verifier.verify(
        signed_request(card, "signature", {}, now=T0), now=T0, role="signature"
    ).identity
    assert (identity.ssin, identity.first_name, identity.last_name) == ("79021802145", "", "Madonna")


def test_callers_compare_the_signer_with_the_subject_of_the_request(
    verifier: EidVerifier, card: FileEid
) -> None:
    # "The signer is the person the request is for" is decided by the caller from identity.ssin.
    token = signed_request(card, "signature", {"ssin": "79021802145"}, now=T0)
    result = verifier.verify(token, now=T0, role="signature")
    assert result.identity.ssin != result.body["ssin"]


# -- configuration --------------------------------------------------------------------------------
def test_specimen_citizen_ca_fixtures_load_as_trusted_cas(card: FileEid) -> None:
    root = load_citizen_ca((FIXTURES / "specimenCa.cer").read_bytes())
    citizen = load_citizen_ca((FIXTURES / "specimenCitizenCa.cer").read_bytes())
    assert citizen.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "200501"
    verifier = EidVerifier([citizen, root])
    assert verifier.trusted_citizen_cas == (citizen, root)
    # Our test card is not from the specimen Citizen CA.
    assert (
        _refused(verifier, signed_request(card, "authentication", {}, now=T0)) is ErrorKind.UNTRUSTED_SIGNER
    )
    # PEM is accepted as well as DER.
    assert load_citizen_ca(citizen.public_bytes(serialization.Encoding.PEM)) == citizen


def test_bad_configuration_is_refused(eid: TestEid) -> None:
    for trusted in ([], [eid.authentication[0]]):
        with pytest.raises(DomainError) as caught:
            EidVerifier(trusted)
        assert caught.value.kind is ErrorKind.CONFIGURATION
    with pytest.raises(DomainError) as caught:
        load_citizen_ca(b"not a certificate")
    assert caught.value.kind is ErrorKind.CONFIGURATION


def test_ca_certificate_as_signer_is_refused(citizen_ca: CA) -> None:
    # Even a trusted CA's own key cannot sign requests as if it were a citizen.
    ca_cert, ca_key = citizen_ca
    token = sign_jws(
        json.dumps({"id": GOOD_ID, "issueInstant": "2025-03-01T12:00:00Z", "body": {}}).encode(),
        chain=[ca_cert],
        sign=lambda d: ca_key.sign(d, padding.PKCS1v15(), hashes.SHA256()),
    )
    assert _refused(EidVerifier([ca_cert]), token) is ErrorKind.UNTRUSTED_SIGNER
