"""CRL and OCSP behaviour of the status service, in process, on SQLite and PostgreSQL.

- CRLNumber strictly increases, also across restarts and after a database restore.
- nextUpdate - thisUpdate <= 7 days.
- A revocation is answered by OCSP at once and is in the CRL within a minute (the server's maintenance
  loop runs every 15 s: here one round is run with the frozen clock 15 s later).
- The OCSP matrix: good, revoked with reason, never issued -> unknown, other issuer -> unauthorized,
  garbage -> malformedRequest; POST and GET.
"""

from __future__ import annotations

import base64
import os
import sqlite3
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.pki.eid_dev import create_citizen_ca
from ehealth_certs.platform import Platform
from tests.ra.helpers import CONTACT, add_doctor, http_client, keystore_dir, manager

PROD = Environment.PRODUCTION
SHA1 = hashes.SHA1  # the RFC 6960 CertID hash every client sends
SSIN = "79121430944"


def crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


def unknown_serial_request(issuer: x509.Certificate, serial: int) -> bytes:
    from ehealth_certs.pki.ocsp import issuer_hashes

    name_hash, key_hash = issuer_hashes(issuer, "sha1")
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


def test_crl_number_increases_across_restarts(settings: Settings, clock) -> None:
    numbers = []
    for round_ in range(3):
        p = Platform.start(settings, clock, create_pki=False)
        try:
            crl = p.status.publish_crl(PROD)
            numbers.append(crl.number)
            assert crl_number(crl.der) == crl.number
            if round_ == 1:
                numbers.append(p.status.publish_crl(PROD).number)  # twice in the same frozen microsecond
        finally:
            p.close()
        if round_ == 1:
            clock.advance(timedelta(hours=1))
    assert numbers == sorted(set(numbers)) and len(numbers) == 4


def test_crl_number_does_not_go_back_after_a_restore(tmp_path: Path, pki_template: Path, clock) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(pki_template, data / "pki")
    settings = Settings(data_dir=data, database_url=f"sqlite:///{data / 'ehcerts.db'}",
                        ca_passphrase="test-only ca passphrase 4f0c", public_base_url="http://127.0.0.1:8443")  # type: ignore[arg-type]  # fmt: skip
    p = Platform.start(settings, clock, create_pki=False)
    p.status.publish_crl(PROD)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(data / "ehcerts.db") as src, sqlite3.connect(backup) as dst:
        src.backup(dst)  # the online backup API, as operations.md prescribes
    clock.advance(timedelta(minutes=10))
    lost = p.status.publish_crl(PROD).number  # published after the backup: lost by the restore
    p.close()
    for suffix in ("", "-wal", "-shm"):
        (data / f"ehcerts.db{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, data / "ehcerts.db")
    clock.advance(timedelta(seconds=1))
    p = Platform.start(settings, clock, create_pki=False)
    try:
        assert p.status.publish_crl(PROD).number > lost
    finally:
        p.close()


def test_crl_next_update_is_at_most_seven_days(platform, clock) -> None:
    crl_row = platform.status.publish_crl(PROD)
    crl = x509.load_der_x509_crl(crl_row.der)
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc <= timedelta(days=7)
    served = http_client(platform).get("/pki/production/crl")
    assert served.status_code == 200 and crl_number(served.content) == crl_row.number
    with pytest.raises(ValueError):
        Settings(crl_validity_hours=7 * 24 + 1)


@pytest.mark.usefixtures("trust_citizen_ca")
def test_revocation_reaches_ocsp_at_once_and_the_crl_within_a_minute(platform, clock, eid_factory,
                                                                    tmp_path: Path) -> None:  # fmt: skip
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    m = manager(platform, clock)
    out = m.request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT)
    cert = out.certificate
    assert cert is not None
    issuing = platform.rt.environments[PROD].pki.issuing.certificate
    web = http_client(platform)
    assert platform.maintenance() == []  # the loop's first round: a CRL exists before the revocation
    before = x509.load_der_x509_crl(web.get("/pki/production/crl").content)
    assert before.get_revoked_certificate_by_serial_number(cert.serial_number) is None

    def ask() -> ocsp.OCSPResponse:
        r = web.post("/pki/production/ocsp", content=ocsp_request(cert, issuing),
                     headers={"Content-Type": "application/ocsp-request"})  # fmt: skip
        return ocsp.load_der_ocsp_response(r.content)

    assert ask().certificate_status is ocsp.OCSPCertStatus.GOOD
    clock.advance(timedelta(seconds=5))
    revoked_at = clock.now()
    m.revoke(person.card, public_key_identifier_hex=out.public_key_identifier, reason="keyCompromise")
    answer = ask()  # at once: the revoking transaction re-signed the stored response
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise
    assert answer.revocation_time_utc == revoked_at.replace(microsecond=0)

    clock.advance(timedelta(seconds=15))  # the next maintenance round
    assert platform.maintenance() == []
    crl = x509.load_der_x509_crl(web.get("/pki/production/crl").content)
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    assert crl.last_update_utc - revoked_at <= timedelta(minutes=1)
    assert [r.serial_number for r in crl].count(cert.serial_number) == 1
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    assert crl_number(crl.public_bytes(serialization.Encoding.DER)) > crl_number(
        before.public_bytes(serialization.Encoding.DER)
    )


@pytest.mark.usefixtures("trust_citizen_ca")
def test_ocsp_matrix(platform, clock, eid_factory, tmp_path: Path) -> None:
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    out = manager(platform, clock).request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw",
                                           contact=CONTACT)  # fmt: skip
    cert = out.certificate
    assert cert is not None
    issuing = platform.rt.environments[PROD].pki.issuing.certificate
    responder = platform.rt.environments[PROD].pki.ocsp.certificate
    web = http_client(platform)

    def post(body: bytes) -> ocsp.OCSPResponse:
        r = web.post(
            "/pki/production/ocsp", content=body, headers={"Content-Type": "application/ocsp-request"}
        )
        assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(r.content)

    good = post(ocsp_request(cert, issuing))
    assert good.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD and good.serial_number == cert.serial_number
    # signed by the delegated responder, itself issued by the CA; 8 h <= interval <= 10 days
    responder.public_key().verify(good.signature, good.tbs_response_bytes, *_padding(good))  # type: ignore[call-arg]
    assert good.next_update_utc is not None
    assert timedelta(hours=8) <= good.next_update_utc - good.this_update_utc <= timedelta(days=10)

    # GET: base64 of the DER request, URL-encoded, in the path (RFC 6960 Appendix A.1)
    b64 = quote(base64.b64encode(ocsp_request(cert, issuing)).decode(), safe="")
    got = web.get(f"/pki/production/ocsp/{b64}")
    assert got.status_code == 200
    assert ocsp.load_der_ocsp_response(got.content).certificate_status is ocsp.OCSPCertStatus.GOOD

    never = post(unknown_serial_request(issuing, int.from_bytes(os.urandom(16), "big")))
    assert never.certificate_status is ocsp.OCSPCertStatus.UNKNOWN

    other_ca, _ = create_citizen_ca(now=clock.now() - timedelta(days=1), name="Some Other CA")
    assert post(unknown_serial_request(other_ca, cert.serial_number)).response_status is (
        ocsp.OCSPResponseStatus.UNAUTHORIZED
    )
    # the acceptance issuing CA is ours, but this serial is not one of its certificates
    acc = platform.rt.environments[Environment.ACCEPTANCE].pki.issuing.certificate
    assert (
        post(unknown_serial_request(acc, cert.serial_number)).certificate_status
        is ocsp.OCSPCertStatus.UNKNOWN
    )

    for garbage in (b"", b"\x30\x03\x02\x01\x01", os.urandom(200)):
        assert post(garbage).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    bad_get = web.get("/pki/production/ocsp/%%%not-base64")
    assert (
        ocsp.load_der_ocsp_response(bad_get.content).response_status
        is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    oversized = web.post("/pki/production/ocsp", content=b"\x30" * (9 * 1024))
    assert oversized.status_code == 200
    assert (
        ocsp.load_der_ocsp_response(oversized.content).response_status
        is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )


def _padding(resp: ocsp.OCSPResponse) -> tuple:  # type: ignore[type-arg]
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    algorithm = resp.signature_hash_algorithm
    assert algorithm is not None
    if resp.signature_algorithm_oid._name.startswith("ecdsa"):
        return (ec.ECDSA(algorithm),)
    return (padding.PKCS1v15(), algorithm)


@pytest.mark.usefixtures("trust_citizen_ca")
def test_crl_in_the_same_second_as_a_revocation(platform, clock, eid_factory, tmp_path: Path) -> None:
    """Regression: a revocation at hh:mm:ss.4 and a CRL at hh:mm:ss.9 (the restart after a crash does exactly
    this: reconcile, then publish). The CRL's thisUpdate is truncated to the second; the entry must be too."""
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    out = manager(platform, clock).request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw",
                                           contact=CONTACT)  # fmt: skip
    clock.advance(timedelta(milliseconds=400))
    platform.certra.operator_revoke(PROD, out.public_key_identifier, "superseded", "operator:test")
    clock.advance(timedelta(milliseconds=500))
    crl = x509.load_der_x509_crl(platform.status.publish_crl(PROD).der)
    assert out.certificate is not None
    entry = crl.get_revoked_certificate_by_serial_number(out.certificate.serial_number)
    assert entry is not None and entry.revocation_date_utc == crl.last_update_utc


def test_a_failing_maintenance_step_does_not_stop_the_others(platform, clock, monkeypatch) -> None:
    """A mail outage (or any broken step) must not keep the CRL from being published."""
    from ehealth_certs.environment import Environment

    def broken(**_kw: object) -> None:
        raise RuntimeError("simulated failure of the mail step")

    monkeypatch.setattr(platform.mail, "deliver", broken)
    assert platform.status.latest_crl(Environment.PRODUCTION) is None
    assert platform.maintenance() == ["mail"]
    assert (
        platform.status.latest_crl(Environment.PRODUCTION) is not None
    )  # the status step ran before and after
