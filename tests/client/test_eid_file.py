"""The PIN-protected test eID file and signed requests made with it."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ehealth_certs.client.eid import FILE_FORMAT, EidCard, FileEid, signed_request
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identity.eid import EidVerifier
from ehealth_certs.pki.eid_dev import TestEid, create_citizen_ca, create_test_eid

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SSIN = "79021802145"
PIN = "1234"


@pytest.fixture(scope="module")
def eid() -> TestEid:
    ca = create_citizen_ca(now=T0)
    return create_test_eid(ssin=SSIN, first_name="Jan", last_name="Peeters", ca=ca, now=T0)


@pytest.fixture(scope="module")
def eid_path(eid: TestEid, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eid") / "jan.eid.json"
    FileEid.write(path, eid, PIN)
    return path


@pytest.fixture(scope="module")
def card(eid_path: Path) -> FileEid:
    return FileEid.open(eid_path, PIN)


def _payload(token: str) -> dict[str, object]:
    segment = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def test_written_file_round_trips(card: FileEid, eid: TestEid) -> None:
    assert card.ssin == SSIN
    assert card.first_name == "Jan"
    assert card.last_name == "Peeters"
    assert card.authentication_chain == [eid.authentication[0], eid.citizen_ca]
    assert card.signature_chain == [eid.signature[0], eid.citizen_ca]


def test_card_signs_with_sha256_pkcs1v15(card: FileEid, eid: TestEid) -> None:
    data = b"to be signed"
    for signature, (cert, _) in (
        (card.sign_with_authentication(data), eid.authentication),
        (card.sign_with_signature(data), eid.signature),
    ):
        public_key = cert.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    # The two keys are distinct: the Authentication signature does not verify with the Signature key.
    signature_key = eid.signature[1].public_key()
    with pytest.raises(InvalidSignature):
        signature_key.verify(card.sign_with_authentication(data), data, padding.PKCS1v15(), hashes.SHA256())


def test_file_is_0600_json_with_encrypted_keys(eid_path: Path) -> None:
    assert stat.S_IMODE(eid_path.stat().st_mode) == 0o600
    document = json.loads(eid_path.read_text())
    assert document["format"] == FILE_FORMAT
    for role in ("authentication", "signature"):
        pem = document[role]["private_key"]
        assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):  # needs a password: it really is encrypted
            serialization.load_pem_private_key(pem.encode(), None)
    # Only the final file remains; no temporary file is left behind.
    assert [p.name for p in eid_path.parent.iterdir()] == [eid_path.name]


def test_file_is_never_overwritten(eid: TestEid, eid_path: Path) -> None:
    before = eid_path.read_bytes()
    with pytest.raises(DomainError) as caught:
        FileEid.write(eid_path, eid, "5678")
    assert caught.value.kind is ErrorKind.CONFLICT
    assert eid_path.read_bytes() == before
    assert FileEid.open(eid_path, PIN).ssin == SSIN


def test_a_file_appearing_during_the_write_survives(
    eid: TestEid, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The early existence check is only a courtesy; the final no-clobber link is what protects.
    target = tmp_path / "race.eid.json"
    real_link = os.link

    def link_after_rival(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        Path(dst).write_text("rival")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_rival)
    with pytest.raises(DomainError) as caught:
        FileEid.write(target, eid, PIN)
    assert caught.value.kind is ErrorKind.CONFLICT
    assert target.read_text() == "rival"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_symlink_target_is_not_followed(eid: TestEid, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "link.eid.json"
    link.symlink_to(victim)
    with pytest.raises(DomainError) as caught:
        FileEid.write(link, eid, PIN)
    assert caught.value.kind is ErrorKind.CONFLICT
    assert victim.read_text() == "keep me"


def test_wrong_pin_is_unauthenticated(eid_path: Path) -> None:
    for pin in ("0000", "12345", ""):
        with pytest.raises(DomainError) as caught:
            FileEid.open(eid_path, pin)
        assert caught.value.kind is ErrorKind.UNAUTHENTICATED
        assert caught.value.detail == "wrong PIN"


def test_short_pin_is_refused_when_writing(eid: TestEid, tmp_path: Path) -> None:
    with pytest.raises(DomainError) as caught:
        FileEid.write(tmp_path / "x.json", eid, "123")
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert not (tmp_path / "x.json").exists()


def test_missing_and_malformed_files(tmp_path: Path, eid_path: Path) -> None:
    with pytest.raises(DomainError) as caught:
        FileEid.open(tmp_path / "absent.json", PIN)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    document = json.loads(eid_path.read_text())
    broken = {
        "not-json.json": "{",
        "wrong-format.json": json.dumps({**document, "format": "other"}),
        "no-signature.json": json.dumps({k: v for k, v in document.items() if k != "signature"}),
        "bad-cert.json": json.dumps({**document, "citizen_ca": "-----BEGIN CERTIFICATE-----\nAAAA\n"}),
        "swapped-keys.json": json.dumps(
            {
                **document,
                "authentication": {
                    **document["authentication"],
                    "private_key": document["signature"]["private_key"],
                },
            }
        ),
    }
    for name, text in broken.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DomainError) as caught:
            FileEid.open(tmp_path / name, PIN)
        assert caught.value.kind is ErrorKind.BAD_REQUEST, name


def test_unencrypted_key_in_file_is_refused(tmp_path: Path, eid: TestEid, eid_path: Path) -> None:
    document = json.loads(eid_path.read_text())
    clear = eid.authentication[1].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    document["authentication"]["private_key"] = clear.decode()
    (tmp_path / "clear.json").write_text(json.dumps(document))
    with pytest.raises(DomainError) as caught:
        FileEid.open(tmp_path / "clear.json", PIN)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


# -- signed requests ------------------------------------------------------------------------------
def test_signed_request_envelope(card: FileEid) -> None:
    token = signed_request(card, "authentication", {"b": 1, "a": [1, 2]}, now=T0 + timedelta(microseconds=7))
    payload = _payload(token)
    assert set(payload) == {"id", "issueInstant", "body"}
    assert payload["issueInstant"] == "2025-03-01T12:00:00Z"
    assert payload["body"] == {"a": [1, 2], "b": 1}
    request_id = payload["id"]
    assert isinstance(request_id, str) and request_id.startswith("_") and len(request_id) == 37
    # Compact JSON with sorted keys: a stable byte form.
    segment = token.split(".")[1]
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    assert raw == json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def test_signed_request_uses_the_chosen_key(card: FileEid, eid: TestEid) -> None:
    verifier = EidVerifier([eid.citizen_ca])
    for key, cert in (("authentication", eid.authentication[0]), ("signature", eid.signature[0])):
        token = signed_request(card, key, {}, now=T0)  # type: ignore[arg-type]
        result = verifier.verify(token, now=T0, role=key)
        assert result.identity.certificate == cert
        assert result.identity.ssin == card.ssin


def test_signed_request_refuses_bad_input(card: FileEid) -> None:
    with pytest.raises(DomainError) as caught:
        signed_request(card, "other", {}, now=T0)  # type: ignore[arg-type]
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    with pytest.raises(DomainError) as caught:
        signed_request(card, "authentication", {"x": object()}, now=T0)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    with pytest.raises(DomainError) as caught:
        signed_request(card, "authentication", {"x": float("nan")}, now=T0)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    with pytest.raises(ValueError, match="timezone"):
        signed_request(card, "authentication", {}, now=datetime(2025, 3, 1, 12, 0))


def test_file_eid_satisfies_the_card_protocol(card: FileEid) -> None:
    # A stand-in card (as a PKCS#11 card will be) needs only the protocol's members.
    as_card: EidCard = card
    assert as_card.ssin == SSIN
    assert signed_request(as_card, "signature", {}, now=T0).count(".") == 2
