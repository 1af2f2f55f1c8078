"""OCSP: request parsing (cryptography- and openssl-built requests), signed responses judged by openssl,
pkilint, the BR timing gate and the delegated-responder rules, unsigned error responses."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import ceremony, issuer, lint, ocsp, profiles
from ehealth_certs.pki.ceremony import EnvironmentPki
from ehealth_certs.pki.signing import SoftwareSigner

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
BASE = "http://pki.ehealth-certs.be"
PEM = serialization.Encoding.PEM
SHA1 = hashes.SHA1()  # noqa: S303 - the CertID hash OCSP clients send by default
DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def pki() -> EnvironmentPki:
    return ceremony.create_environment_pki(Environment.ACCEPTANCE, now=NOW, base_url=BASE)


@pytest.fixture(scope="module")
def leaf(pki: EnvironmentPki) -> x509.Certificate:
    profile = profiles.leaf_profile(Environment.ACCEPTANCE)
    start, end = profiles.validity_window(profile, NOW, pki.issuing.certificate.not_valid_after_utc)
    crl_url, ocsp_url, ca_issuers_url = ceremony.leaf_urls(Environment.ACCEPTANCE, BASE)
    prepared = issuer.prepare_leaf(
        ca=pki.issuing,
        profile=profile,
        subject=ceremony.ca_name(Environment.ACCEPTANCE, "Leaf"),
        public_key=SoftwareSigner.generate_rsa(2048).public_key,
        serial=issuer.random_serial(),
        not_before=start,
        not_after=end,
        crl_url=crl_url,
        ocsp_url=ocsp_url,
        ca_issuers_url=ca_issuers_url,
    )
    return issuer.sign_prepared(pki.issuing, prepared)


@pytest.fixture()
def files(pki: EnvironmentPki, leaf: x509.Certificate, tmp_path: Path) -> dict[str, Path]:
    paths = {
        "root": tmp_path / "root.pem",
        "issuing": tmp_path / "issuing.pem",
        "leaf": tmp_path / "leaf.pem",
        "chain": tmp_path / "chain.pem",
    }
    paths["root"].write_bytes(pki.root.certificate.public_bytes(PEM))
    paths["issuing"].write_bytes(pki.issuing.certificate.public_bytes(PEM))
    paths["leaf"].write_bytes(leaf.public_bytes(PEM))
    paths["chain"].write_bytes(paths["root"].read_bytes() + paths["issuing"].read_bytes())
    return paths


def _request(
    leaf: x509.Certificate,
    issuer_cert: x509.Certificate,
    algorithm: hashes.HashAlgorithm,
    nonce: bytes | None = None,
) -> bytes:
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer_cert, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(DER)


def _respond(pki: EnvironmentPki, leaf: x509.Certificate, status: str, **kw: Any) -> bytes:
    args: dict[str, Any] = {
        "revoked_at": None,
        "reason": None,
        "this_update": NOW,
        "next_update": NOW + timedelta(days=1),
    }
    args.update(kw)
    return issuer.sign_ocsp_response(
        pki.ocsp, issuer_certificate=pki.issuing.certificate, serial=leaf.serial_number, status=status, **args
    )


@pytest.mark.parametrize(("algorithm", "name"), [(SHA1, "sha1"), (hashes.SHA256(), "sha256")])
def test_parse_request(
    pki: EnvironmentPki, leaf: x509.Certificate, algorithm: hashes.HashAlgorithm, name: str
) -> None:
    query = ocsp.parse_ocsp_request(_request(leaf, pki.issuing.certificate, algorithm, nonce=b"n" * 16))
    assert query.hash_algorithm == name
    assert (query.issuer_name_hash, query.issuer_key_hash) == ocsp.issuer_hashes(
        pki.issuing.certificate, name
    )
    assert query.serial == leaf.serial_number
    assert query.nonce == b"n" * 16


def test_parse_openssl_request(pki: EnvironmentPki, leaf: x509.Certificate, files: dict[str, Path]) -> None:
    out = files["leaf"].parent / "req.der"
    subprocess.run(
        [
            "openssl",
            "ocsp",
            "-issuer",
            str(files["issuing"]),
            "-cert",
            str(files["leaf"]),
            "-reqout",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    query = ocsp.parse_ocsp_request(out.read_bytes())
    assert query.serial == leaf.serial_number and query.hash_algorithm == "sha1"
    assert query.nonce is not None and len(query.nonce) == 16  # openssl adds a 16-byte nonce by default
    two = files["leaf"].parent / "two.der"
    subprocess.run(
        [
            "openssl",
            "ocsp",
            "-issuer",
            str(files["issuing"]),
            "-cert",
            str(files["leaf"]),
            "-serial",
            "0x1234",
            "-reqout",
            str(two),
        ],
        check=True,
        capture_output=True,
    )
    with pytest.raises(DomainError) as err:
        ocsp.parse_ocsp_request(two.read_bytes())  # exactly one request is supported
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE


@pytest.mark.parametrize(
    "data", [b"", b"\x30\x00", b"garbage", b"\x30\x82\xff\xff" + b"\x00" * 10, b"\x00" * 20000]
)
def test_malformed_requests(data: bytes) -> None:
    with pytest.raises(DomainError) as err:
        ocsp.parse_ocsp_request(data)
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE


def test_truncated_and_unsupported_hash_requests(pki: EnvironmentPki, leaf: x509.Certificate) -> None:
    good = _request(leaf, pki.issuing.certificate, SHA1)
    for cut in (1, 5, len(good) // 2):
        with pytest.raises(DomainError) as err:
            ocsp.parse_ocsp_request(good[:-cut])
        assert err.value.kind is ErrorKind.MALFORMED_MESSAGE
    with pytest.raises(DomainError) as err:
        ocsp.parse_ocsp_request(_request(leaf, pki.issuing.certificate, hashes.SHA512()))
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE
    with pytest.raises(DomainError) as err:
        ocsp.parse_ocsp_request(_request(leaf, pki.issuing.certificate, SHA1, nonce=b"x" * 33))
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE


@pytest.mark.parametrize("status", ["malformedRequest", "unauthorized", "internalError", "tryLater"])
def test_error_responses(status: str) -> None:
    data = ocsp.error_response(status)
    parsed = x509_ocsp.load_der_ocsp_response(data)
    assert (
        parsed.response_status.name.lower()
        == {
            "malformedRequest": "malformed_request",
            "unauthorized": "unauthorized",
            "internalError": "internal_error",
            "tryLater": "try_later",
        }[status]
    )


def test_unknown_error_status_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        ocsp.error_response("successful")
    assert err.value.kind is ErrorKind.BAD_REQUEST


def _openssl_status(files: dict[str, Path], data: bytes, *digest: str) -> str:
    path = files["leaf"].parent / "resp.der"
    path.write_bytes(data)
    result = subprocess.run(
        [
            "openssl",
            "ocsp",
            "-respin",
            str(path),
            "-issuer",
            str(files["issuing"]),
            "-CAfile",
            str(files["chain"]),
            *digest,
            "-cert",
            str(files["leaf"]),
            "-attime",
            str(int(NOW.timestamp()) + 60),
            # openssl checks the status times against the wall clock, not -attime: allow any distance.
            "-validity_period",
            str(100 * 365 * 86_400),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Response verify OK" in result.stderr
    return result.stdout


def test_good_revoked_unknown_judged_by_openssl(
    pki: EnvironmentPki, leaf: x509.Certificate, files: dict[str, Path]
) -> None:
    good = _respond(pki, leaf, "good")
    assert f"{files['leaf']}: good" in _openssl_status(files, good)
    revoked = _respond(
        pki, leaf, "revoked", revoked_at=NOW - timedelta(hours=2), reason=x509.ReasonFlags.key_compromise
    )
    out = _openssl_status(files, revoked)
    assert f"{files['leaf']}: revoked" in out and "Reason: keyCompromise" in out
    unknown = _respond(pki, leaf, "unknown")
    assert f"{files['leaf']}: unknown" in _openssl_status(files, unknown)
    sha256 = _respond(pki, leaf, "good", hash_algorithm="sha256")
    assert f"{files['leaf']}: good" in _openssl_status(files, sha256, "-sha256")
    for data in (good, revoked, unknown, sha256):
        assert lint.blocking(lint.lint_ocsp_response(data)) == []


def test_response_fields(pki: EnvironmentPki, leaf: x509.Certificate) -> None:
    data = _respond(
        pki,
        leaf,
        "revoked",
        revoked_at=NOW - timedelta(days=1),
        reason=x509.ReasonFlags.superseded,
        nonce=b"0123456789abcdef",
        produced_at=NOW + timedelta(minutes=1),
    )
    parsed = x509_ocsp.load_der_ocsp_response(data)
    assert parsed.response_status is x509_ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.certificate_status is x509_ocsp.OCSPCertStatus.REVOKED
    assert parsed.revocation_reason is x509.ReasonFlags.superseded
    assert parsed.revocation_time_utc == NOW - timedelta(days=1)
    assert parsed.this_update_utc == NOW and parsed.next_update_utc == NOW + timedelta(days=1)
    assert parsed.produced_at_utc == NOW + timedelta(minutes=1)
    assert parsed.responder_name is None
    assert (
        parsed.responder_key_hash
        == x509.SubjectKeyIdentifier.from_public_key(pki.ocsp.signer.public_key).digest
    )
    assert parsed.certificates == [pki.ocsp.certificate]
    assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    assert parsed.serial_number == leaf.serial_number
    name_hash, key_hash = ocsp.issuer_hashes(pki.issuing.certificate, "sha1")
    assert (parsed.issuer_name_hash, parsed.issuer_key_hash) == (name_hash, key_hash)
    key = pki.ocsp.certificate.public_key()
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    assert parsed.signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.ECDSA_WITH_SHA256


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        (
            {"next_update": NOW + timedelta(hours=8) - timedelta(seconds=1)},
            "ehcerts.ocsp_validity_interval_out_of_range",
        ),
        ({"next_update": NOW + timedelta(days=10, seconds=1)}, "ehcerts.ocsp_validity_interval_out_of_range"),
        ({"status": "revoked"}, "ehcerts.ocsp_revocation_time_missing_or_future"),
        (
            {"status": "revoked", "revoked_at": NOW + timedelta(seconds=1)},
            "ehcerts.ocsp_revocation_time_missing_or_future",
        ),
        ({"status": "maybe"}, "ehcerts.ocsp_unknown_status"),
    ],
)
def test_gate_refuses_bad_responses(
    pki: EnvironmentPki, leaf: x509.Certificate, kw: dict[str, object], code: str
) -> None:
    status = str(kw.pop("status", "good"))
    with pytest.raises(DomainError) as err:
        _respond(pki, leaf, status, **kw)
    assert err.value.kind is ErrorKind.LINT_FAILURE
    assert code in {f.code for f in err.value.params["findings"]}


def test_interval_boundaries_are_accepted(pki: EnvironmentPki, leaf: x509.Certificate) -> None:
    assert _respond(pki, leaf, "good", next_update=NOW + timedelta(hours=8))
    assert _respond(pki, leaf, "good", next_update=NOW + timedelta(days=10))


def test_only_a_delegated_responder_of_this_ca_signs(pki: EnvironmentPki, leaf: x509.Certificate) -> None:
    with pytest.raises(DomainError) as err:  # the EtkRA certificate has no id-kp-OCSPSigning
        issuer.sign_ocsp_response(
            pki.etkra,
            issuer_certificate=pki.issuing.certificate,
            serial=1,
            status="good",
            revoked_at=None,
            reason=None,
            this_update=NOW,
            next_update=NOW + timedelta(days=1),
        )
    assert "ehcerts.ocsp_responder_lacks_ocsp_signing" in {f.code for f in err.value.params["findings"]}
    with pytest.raises(DomainError) as err:  # the responder is not issued by the root
        issuer.sign_ocsp_response(
            pki.ocsp,
            issuer_certificate=pki.root.certificate,
            serial=1,
            status="good",
            revoked_at=None,
            reason=None,
            this_update=NOW,
            next_update=NOW + timedelta(days=1),
        )
    assert "ehcerts.ocsp_responder_not_issued_by_ca" in {f.code for f in err.value.params["findings"]}
