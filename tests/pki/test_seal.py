"""Sealed messages (ETEE triple wrap): the real Alice -> Bob messages, messages we seal for Bob's real ETK
(checked by openssl cms layer by layer), key generations, trust and revocation, and broken input."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from cryptography import x509

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import cms
from ehealth_certs.pki import seal as seal_mod
from ehealth_certs.pki.cms import ViolationCode
from ehealth_certs.pki.etk import parse_etk
from ehealth_certs.pki.seal import TrustStatus, ValidationStatus, seal, unseal
from tests.pki.etee_pki import (
    NOW,
    OPENSSL,
    SECRET_TEXT,
    ca2,
    fixture_bytes,
    fixture_keystore,
    key_pem,
    mini_pki,
    pem,
)

BOB = "bob/bobs_private_key_store.p12"
OLD_BOB = "bob/old_bobs_private_key_store.p12"
ALICE = "alice/alices_private_key_store.p12"
FIXTURE_TIME = datetime(2024, 1, 1, tzinfo=UTC)  # inside the Alice/Bob chains (2014-2033)


def good(_cert: x509.Certificate, _issuer: x509.Certificate) -> str:
    return "good"


def _seal_for(etk_rel: str, content: bytes = b"hello Bob") -> bytes:
    carol = mini_pki().people["Carol"]
    return seal(content, carol.key, [carol.cert, mini_pki().root], [parse_etk(fixture_bytes(etk_rel))], NOW)


# ---------------------------------------------------------------------------------------------------
# The real messages
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", ["msg/message_from_alice_for_bob.msg", "msg/triple_wrapped_correct.msg"])
def test_bob_opens_the_real_message(rel: str) -> None:
    result = unseal(
        fixture_bytes(rel),
        [fixture_keystore(BOB)],
        trusted_cas=[ca2()],
        now=FIXTURE_TIME,
        revocation_checker=good,
        allow_sha1_certificates=True,
    )
    assert result.content.startswith(SECRET_TEXT)
    assert result.recipient_alias == "825373489"
    assert result.sender.subject.rfc4514_string().startswith("CN=Alice")
    assert result.report.validation is ValidationStatus.VALID
    assert result.report.trust is TrustStatus.FULL
    assert result.report.signing_time == datetime(2014, 3, 13, 11, 39, 12, tzinfo=UTC)


def test_real_message_without_sha1_allowance_is_not_trusted() -> None:
    result = unseal(
        fixture_bytes("msg/triple_wrapped_correct.msg"),
        [fixture_keystore(BOB)],
        trusted_cas=[ca2()],
        now=FIXTURE_TIME,
        revocation_checker=good,
    )
    assert result.report.validation is ValidationStatus.VALID  # the message signatures are SHA-256 PSS
    assert result.report.trust is TrustStatus.NONE
    assert ViolationCode.ALGORITHM_NOT_ALLOWED in {v.code for v in result.report.sender_certificate}


def test_real_message_with_invalid_signature() -> None:
    result = unseal(
        fixture_bytes("msg/triple_wrapped_invalid_signature.msg"),
        [fixture_keystore(BOB)],
        trusted_cas=[ca2()],
        now=FIXTURE_TIME,
        revocation_checker=good,
        allow_sha1_certificates=True,
    )
    assert result.report.validation is ValidationStatus.INVALID
    assert [v.code for v in result.report.outer_signature] == [ViolationCode.SIGNATURE_INVALID]
    data = json.loads(json.dumps(result.report.to_json()))
    assert data["validation"] == "INVALID"
    assert data["violations"]["outerSignature"][0]["code"] == "SIGNATURE_INVALID"


def test_message_for_bob_is_not_for_alice() -> None:
    with pytest.raises(DomainError) as err:
        unseal(
            fixture_bytes("msg/triple_wrapped_correct.msg"),
            [fixture_keystore(ALICE)],
            trusted_cas=[ca2()],
            now=FIXTURE_TIME,
        )
    assert err.value.kind is ErrorKind.NO_DECRYPTION_KEY


# ---------------------------------------------------------------------------------------------------
# Trust and revocation
# ---------------------------------------------------------------------------------------------------


def test_trust_follows_revocation_status() -> None:
    message = _seal_for("bob/bobs_public_key.etk")
    root = mini_pki().root
    calls: list[tuple[str, str]] = []

    def recording(cert: x509.Certificate, issuer: x509.Certificate) -> str:
        calls.append((cert.subject.rfc4514_string(), issuer.subject.rfc4514_string()))
        return "good"

    full = unseal(message, [fixture_keystore(BOB)], trusted_cas=[root], now=NOW, revocation_checker=recording)
    assert full.report.trust is TrustStatus.FULL and full.report.validation is ValidationStatus.VALID
    assert calls == [
        (mini_pki().people["Carol"].cert.subject.rfc4514_string(), root.subject.rfc4514_string())
    ]

    unknown = unseal(message, [fixture_keystore(BOB)], trusted_cas=[root], now=NOW)
    assert unknown.report.trust is TrustStatus.UNSURE
    assert [v.code for v in unknown.report.sender_certificate] == [ViolationCode.REVOCATION_UNKNOWN]

    revoked = unseal(
        message,
        [fixture_keystore(BOB)],
        trusted_cas=[root],
        now=NOW,
        revocation_checker=lambda c, i: "revoked",
    )
    assert revoked.report.trust is TrustStatus.NONE
    assert ViolationCode.REVOKED in {v.code for v in revoked.report.sender_certificate}


def test_untrusted_sender() -> None:
    result = unseal(
        _seal_for("bob/bobs_public_key.etk"),
        [fixture_keystore(BOB)],
        trusted_cas=[ca2()],
        now=NOW,
        revocation_checker=good,
    )
    assert result.report.trust is TrustStatus.NONE
    assert ViolationCode.UNTRUSTED_ISSUER in {v.code for v in result.report.sender_certificate}
    assert result.content == b"hello Bob"  # the data is still delivered, with the report


def test_expired_sender_certificate() -> None:
    result = unseal(
        _seal_for("bob/bobs_public_key.etk"),
        [fixture_keystore(BOB)],
        trusted_cas=[mini_pki().root],
        now=datetime(2030, 1, 1, tzinfo=UTC),
        revocation_checker=good,
    )
    assert result.report.trust is TrustStatus.NONE
    assert ViolationCode.NOT_TIME_VALID in {v.code for v in result.report.sender_certificate}


# ---------------------------------------------------------------------------------------------------
# Our messages
# ---------------------------------------------------------------------------------------------------


def test_our_message_for_bobs_real_etk_round_trips() -> None:
    content = bytes(range(256)) * 5
    result = unseal(
        _seal_for("bob/bobs_public_key.etk", content),
        [fixture_keystore(BOB)],
        trusted_cas=[mini_pki().root],
        now=NOW,
        revocation_checker=good,
    )
    assert result.content == content
    assert result.report.validation is ValidationStatus.VALID
    assert result.report.trust is TrustStatus.FULL
    assert result.report.signing_time == NOW


def test_our_message_has_the_reference_layers() -> None:
    message = _seal_for("bob/bobs_public_key.etk")
    outer = asn1_cms.ContentInfo.load(message)["content"]
    signer = outer["signer_infos"][0]
    assert signer["signature_algorithm"].native["algorithm"] == "rsassa_pss"
    assert signer["signature_algorithm"].native["parameters"]["salt_length"] == 32
    assert [a["type"].native for a in signer["signed_attrs"]] == [
        "content_type",
        "signing_time",
        "message_digest",
    ]
    assert len(outer["certificates"]) == 2
    middle = asn1_cms.ContentInfo.load(outer["encap_content_info"]["content"].native)["content"]
    assert (
        middle["encrypted_content_info"]["content_encryption_algorithm"]["algorithm"].native == "aes128_cbc"
    )
    (ri,) = list(middle["recipient_infos"])
    assert ri.chosen["rid"].chosen["serial_number"].native == 825373489
    assert ri.chosen["key_encryption_algorithm"]["algorithm"].native == "rsaes_pkcs1v15"


@pytest.mark.interop
def test_openssl_verifies_and_decrypts_our_layers(tmp_path: Path) -> None:
    content = b"openssl reads every layer\n" * 10
    message = _seal_for("bob/bobs_public_key.etk", content)
    bob_enc = fixture_keystore(BOB).keys["825373489"]
    carol = mini_pki().people["Carol"]
    files = {
        "msg.der": message,
        "root.pem": pem(mini_pki().root),
        "carol.pem": pem(carol.cert),
        "bob_enc_cert.pem": pem(bob_enc.certificate),
        "bob_enc_key.pem": key_pem(bob_enc.private_key),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    def run(*args: str) -> None:
        proc = subprocess.run(
            [OPENSSL, "cms", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr

    run(
        "-verify",
        "-inform",
        "DER",
        "-in",
        "msg.der",
        "-binary",
        "-CAfile",
        "root.pem",
        "-purpose",
        "any",
        "-out",
        "middle.der",
    )
    run(
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "middle.der",
        "-recip",
        "bob_enc_cert.pem",
        "-inkey",
        "bob_enc_key.pem",
        "-binary",
        "-out",
        "inner.der",
    )
    run(
        "-verify",
        "-inform",
        "DER",
        "-in",
        "inner.der",
        "-binary",
        "-noverify",
        "-certfile",
        "carol.pem",
        "-out",
        "content.bin",
    )
    assert (tmp_path / "content.bin").read_bytes() == content

    # And openssl refuses a flipped outer signature.
    (tmp_path / "bad.der").write_bytes(message[:-1] + bytes([message[-1] ^ 1]))
    proc = subprocess.run(
        [
            OPENSSL,
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "bad.der",
            "-binary",
            "-CAfile",
            "root.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode != 0


def test_flipped_outer_signature_is_reported() -> None:
    message = _seal_for("bob/bobs_public_key.etk")
    result = unseal(
        message[:-1] + bytes([message[-1] ^ 1]),
        [fixture_keystore(BOB)],
        trusted_cas=[mini_pki().root],
        now=NOW,
        revocation_checker=good,
    )
    assert result.report.validation is ValidationStatus.INVALID
    assert [v.code for v in result.report.outer_signature] == [ViolationCode.SIGNATURE_INVALID]
    assert result.report.inner_signature == []


def test_several_recipients_each_open_it() -> None:
    carol = mini_pki().people["Carol"]
    etks = [parse_etk(fixture_bytes(r)) for r in ("bob/bobs_public_key.etk", "alice/alices_public_key.etk")]
    message = seal(b"to both", carol.key, [carol.cert], etks, NOW)
    for store, alias in ((BOB, "825373489"), (ALICE, "1204544406096826217265")):
        result = unseal(
            message,
            [fixture_keystore(store)],
            trusted_cas=[mini_pki().root],
            now=NOW,
            revocation_checker=good,
        )
        assert result.content == b"to both" and result.recipient_alias == alias


def test_old_key_generation_in_another_keystore_is_found() -> None:
    message = _seal_for("bob/old_bobs_public_key.etk", b"for the old key")
    result = unseal(
        message,
        [fixture_keystore(BOB), fixture_keystore(OLD_BOB)],
        trusted_cas=[mini_pki().root],
        now=NOW,
        revocation_checker=good,
    )
    assert result.content == b"for the old key"
    assert result.recipient_alias == "232784750872845143225881750226911779648"


def test_inner_signer_different_is_reported() -> None:
    carol, dave = mini_pki().people["Carol"], mini_pki().people["Dave"]
    bob_cert = parse_etk(fixture_bytes("bob/bobs_public_key.etk")).encryption_certificate
    inner = seal_mod._signed_layer(b"swapped", dave.key, dave.cert, [], NOW)
    middle = seal_mod._envelope(inner, [bob_cert])
    message = seal_mod._signed_layer(middle, carol.key, carol.cert, [carol.cert, dave.cert], NOW)
    result = unseal(
        message, [fixture_keystore(BOB)], trusted_cas=[mini_pki().root], now=NOW, revocation_checker=good
    )
    assert result.report.validation is ValidationStatus.INVALID
    assert [v.code for v in result.report.inner_signature] == [ViolationCode.INNER_SIGNER_DIFFERENT]
    assert result.report.outer_signature == []


def test_report_is_json_serialisable() -> None:
    result = unseal(
        _seal_for("bob/bobs_public_key.etk"), [fixture_keystore(BOB)], trusted_cas=[mini_pki().root], now=NOW
    )
    data = json.loads(json.dumps(result.report.to_json()))
    assert data["validation"] == "VALID" and data["trust"] == "UNSURE"
    assert data["signingTime"] == NOW.isoformat()
    assert data["violations"]["senderCertificate"][0]["code"] == "REVOCATION_UNKNOWN"


def test_seal_refuses_bad_input() -> None:
    carol, dave = mini_pki().people["Carol"], mini_pki().people["Dave"]
    bob = parse_etk(fixture_bytes("bob/bobs_public_key.etk"))
    for args in ((carol.key, [carol.cert], []), (carol.key, [], [bob]), (dave.key, [carol.cert], [bob])):
        with pytest.raises(DomainError) as err:
            seal(b"x", *args, NOW)  # type: ignore[arg-type]
        assert err.value.kind is ErrorKind.BAD_REQUEST


# ---------------------------------------------------------------------------------------------------
# Broken input
# ---------------------------------------------------------------------------------------------------


def _rebuild(message: bytes, change: str) -> bytes:
    info = asn1_cms.ContentInfo.load(message)
    sd = info["content"]
    if change == "two signers":
        signer = sd["signer_infos"][0]
        sd["signer_infos"] = asn1_cms.SignerInfos([signer, signer])
    elif change == "no certificates":
        sd["certificates"] = asn1_cms.CertificateSet([])
    return bytes(info.dump(force=True))


@pytest.mark.parametrize(
    ("change", "detail"), [("two signers", "2 signer infos"), ("no certificates", "signer's certificate")]
)
def test_structurally_broken_messages_are_malformed(change: str, detail: str) -> None:
    with pytest.raises(DomainError) as err:
        unseal(
            _rebuild(_seal_for("bob/bobs_public_key.etk"), change),
            [fixture_keystore(BOB)],
            trusted_cas=[mini_pki().root],
            now=NOW,
        )
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE
    assert detail in err.value.detail


def test_several_signing_times_are_malformed() -> None:
    carol = mini_pki().people["Carol"]
    content = b"two clocks"
    attrs = asn1_cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["data"]},
            {"type": "signing_time", "values": [cms.cms_time(NOW)]},
            {"type": "signing_time", "values": [cms.cms_time(NOW)]},
            {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
        ]
    )
    signature = seal_mod._pss_sign(carol.key, cms.attrs_set_der(attrs))
    message = cms.signed_data(
        content,
        carol.cert,
        signature,
        signature_algorithm=cms.PSS_SHA256,
        signed_attrs=attrs,
        certificates=[carol.cert],
    )
    with pytest.raises(DomainError) as err:
        unseal(message, [fixture_keystore(BOB)], trusted_cas=[mini_pki().root], now=NOW)
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE
    assert "signing_time" in err.value.detail


@pytest.mark.parametrize("data", [b"", b"\x30\x80", b"plain text", fixture_bytes("ca/CA2.cer")])
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(DomainError) as err:
        unseal(data, [fixture_keystore(BOB)], trusted_cas=[], now=NOW)
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE


def test_outer_layer_that_is_not_an_envelope_is_malformed() -> None:
    carol = mini_pki().people["Carol"]
    message = seal_mod._signed_layer(b"not an envelope", carol.key, carol.cert, [carol.cert], NOW)
    with pytest.raises(DomainError) as err:
        unseal(message, [fixture_keystore(BOB)], trusted_cas=[mini_pki().root], now=NOW)
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE
