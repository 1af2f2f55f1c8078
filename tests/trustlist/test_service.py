"""The publication service on SQLite and PostgreSQL: valid signed lists, sequence numbers, history, NextUpdate."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ehealth_certs.clock import FixedClock
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import tsl
from ehealth_certs.pki.ceremony import EnvironmentPki
from ehealth_certs.platform import Platform
from ehealth_certs.storage.models import Issuer, TslPublication
from ehealth_certs.trustlist.consume import VerifiedList, verify_trusted_list
from ehealth_certs.trustlist.service import Publication
from tests.trustlist.tl_helpers import SAFE_XMLSEC1, make_cert, pyxmlsec_verify, replace_once

PROD = Environment.PRODUCTION
ACPT = Environment.ACCEPTANCE
GRANTED, WITHDRAWN = tsl.STATUS_GRANTED, tsl.STATUS_WITHDRAWN


@pytest.fixture(scope="module")
def tsa_certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return make_cert(key, "ehealth-certs Timestamping 001", eku=[ExtendedKeyUsageOID.TIME_STAMPING])


@pytest.fixture(scope="module")
def tls_certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return make_cert(key, "tsl.ehealth-certs.example", eku=[ExtendedKeyUsageOID.SERVER_AUTH])


def _signer(platform: Platform, env: Environment = PROD) -> x509.Certificate:
    return platform.trustlists.signer_certificate(env)


def _verify(platform: Platform, publication: Publication) -> VerifiedList:
    return verify_trusted_list(
        publication.xml,
        pinned_signers=[_signer(platform, publication.environment)],
        now=platform.rt.clock.now(),
    )


def xmlsec1_platform(
    xml: bytes, pki: EnvironmentPki, workdir: Path, *, at: datetime | None
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """xmlsec1 twice: the guide's safe command line exactly (``--enabled-key-data x509 --trusted-pem
    <signer>``: the platform's list signer is self-signed, like the Belgian one), and the exact signer key
    (``--pubkey-cert-pem``, a leaf pin)."""
    files = {}
    for role in ("tsl",):
        files[role] = workdir / f"xmlsec1-{role}.pem"
        files[role].write_bytes(getattr(pki, role).certificate.public_bytes(serialization.Encoding.PEM))
    path = workdir / "tl-under-test.xml"
    path.write_bytes(xml)
    when = ["--verification-time", at.strftime("%Y-%m-%d %H:%M:%S")] if at is not None else []
    chain = [*SAFE_XMLSEC1, *when, "--trusted-pem", str(files["tsl"]), str(path)]
    leaf = [*SAFE_XMLSEC1, *when, "--pubkey-cert-pem", str(files["tsl"]), str(path)]
    run = [subprocess.run(c, capture_output=True, text=True, timeout=60, check=False) for c in (chain, leaf)]
    return run[0], run[1]


def judges_accept(xml: bytes, pki: EnvironmentPki, workdir: Path, *, at: datetime | None) -> None:
    """The XSD set, the project's verifier, python-xmlsec and xmlsec1 (both forms) accept the exact bytes."""
    tsl.validate_schema(etree.fromstring(xml))
    verify_trusted_list(xml, pinned_signers=[pki.tsl.certificate], now=at or datetime.now(UTC))
    pyxmlsec_verify(xml, pki.tsl.certificate)
    for run in xmlsec1_platform(xml, pki, workdir, at=at):
        assert run.returncode == 0, run.stderr
        assert "SignedInfo References (ok/all): 2/2" in run.stderr


def _judges_accept(platform: Platform, publication: Publication, tmp_path: Path) -> None:
    pki = platform.rt.environments[publication.environment].pki
    judges_accept(publication.xml, pki, tmp_path, at=platform.rt.clock.now())


def _services(verified: VerifiedList) -> dict[str, tsl.ListedService]:
    return {s.name: s for s in verified.services}


# -- the published list -----------------------------------------------------------------------------
@pytest.mark.interop
def test_first_list_names_the_platform_pki_and_every_judge_accepts_it(
    platform: Platform, tmp_path: Path
) -> None:
    publication = platform.trustlists.publish(PROD)
    assert publication.sequence_number == 1
    now = platform.rt.clock.now()
    assert publication.issue_time == now.replace(microsecond=0)
    assert publication.next_update == publication.issue_time + timedelta(days=30)
    assert publication.sha2 == tsl.sha2_digest_file(publication.xml)
    _judges_accept(platform, publication, tmp_path)

    verified = _verify(platform, publication)
    assert verified.version == 6 and verified.sequence_number == 1 and verified.territory == "BE"
    pki = platform.rt.environments[PROD].pki
    by_fp = {tsl.fingerprint(c): (t, st) for t, c, st in verified.certificates}
    assert by_fp == {
        tsl.fingerprint(pki.root.certificate): (tsl.SERVICE_CA_PKC, GRANTED),
        tsl.fingerprint(pki.issuing.certificate): (tsl.SERVICE_CA_PKC, GRANTED),
        tsl.fingerprint(pki.ocsp.certificate): (tsl.SERVICE_OCSP, GRANTED),
        tsl.fingerprint(pki.etkra.certificate): (tsl.SERVICE_UNSPECIFIED, GRANTED),
    }  # the signer itself is pinned, not listed
    root = etree.fromstring(publication.xml)
    info = root.find(tsl.q(tsl.TSL_NS, "SchemeInformation"))
    assert info is not None
    assert (
        info.findtext(tsl.tsl_path("DistributionPoints", "URI")) == "http://127.0.0.1:8443/tsl/production.xml"
    )
    assert info.findtext(tsl.tsl_path("SchemeOperatorName", "Name")) == "ehealth-certs"
    # The environments share no trust: the acceptance list names the acceptance PKI only.
    acceptance = platform.trustlists.publish(ACPT)
    assert acceptance.sequence_number == 1
    acpt_fps = {tsl.fingerprint(c) for _, c, _ in _verify(platform, acceptance).certificates}
    assert not acpt_fps & set(by_fp)


@pytest.mark.interop
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<TSLSequenceNumber>1<", b"<TSLSequenceNumber>9<"),
        (b"Svcstatus/granted</ServiceStatus>", b"Svcstatus/withdrawn</ServiceStatus>"),
        (
            b'<Name xml:lang="en">ehealth-certs Production Issuing CA 001<',
            b'<Name xml:lang="en">ehealth-certs Production Issuing CA 002<',
        ),
    ],
    ids=["sequence-number", "service-status", "service-name"],
)
def test_a_list_edited_after_signing_fails_every_judge(
    platform: Platform, tmp_path: Path, old: bytes, new: bytes
) -> None:
    publication = platform.trustlists.publish(PROD)
    forged = replace_once(publication.xml, old, new)
    with pytest.raises(DomainError) as err:
        verify_trusted_list(forged, pinned_signers=[_signer(platform)], now=platform.rt.clock.now())
    assert err.value.kind is ErrorKind.BAD_SIGNATURE
    with pytest.raises(xmlsec.Error):
        pyxmlsec_verify(forged, _signer(platform))
    pki = platform.rt.environments[PROD].pki
    for run in xmlsec1_platform(forged, pki, tmp_path, at=platform.rt.clock.now()):
        assert run.returncode != 0 and "failed to verify" in run.stderr
    judges_accept(publication.xml, pki, tmp_path, at=platform.rt.clock.now())
    # The other environment's signer and chain do not verify this list either.
    other = platform.rt.environments[ACPT].pki
    assert all(
        r.returncode != 0
        for r in xmlsec1_platform(publication.xml, other, tmp_path, at=platform.rt.clock.now())
    )


def test_the_acceptance_signer_does_not_verify_the_production_list(platform: Platform) -> None:
    publication = platform.trustlists.publish(PROD)
    with pytest.raises(DomainError) as err:
        verify_trusted_list(
            publication.xml, pinned_signers=[_signer(platform, ACPT)], now=platform.rt.clock.now()
        )
    assert err.value.kind is ErrorKind.UNTRUSTED_SIGNER


# -- sequence numbers ---------------------------------------------------------------------------------
def test_sequence_numbers_rise_by_one_and_survive_a_restart(
    platform: Platform, settings: Settings, clock: FixedClock
) -> None:
    assert [platform.trustlists.publish(PROD).sequence_number for _ in range(3)] == [1, 2, 3]
    assert platform.trustlists.publish(ACPT).sequence_number == 1  # one counter per environment
    platform.close()
    clock.advance(timedelta(minutes=5))
    again = Platform.start(settings, clock, create_pki=False)
    try:
        assert again.trustlists.latest(PROD).sequence_number == 3  # type: ignore[union-attr]
        assert again.trustlists.publish(PROD).sequence_number == 4
        verified = _verify(again, again.trustlists.latest(PROD))  # type: ignore[arg-type]
        assert verified.sequence_number == 4
        # The database refuses a second row with the same (environment, sequence).
        with pytest.raises(IntegrityError), again.rt.db.transaction() as s:
            row = s.execute(select(TslPublication).where(TslPublication.sequence == 4)).scalar_one()
            s.add(
                TslPublication(
                    environment="production", sequence=4, state="published", issue_time=row.issue_time,
                    next_update=row.next_update, services_digest=row.services_digest, reason="x",
                    published_by="test",
                )
            )  # fmt: skip
    finally:
        again.close()


def test_a_sequence_reserved_but_never_signed_is_not_reused(platform: Platform) -> None:
    first = platform.trustlists.publish(PROD)
    # A crash after the intent row was committed and before the signature: the number stays taken.
    platform.trustlists._reserve(PROD, actor="test", reason="crash")
    assert platform.trustlists.latest(PROD) == first
    second = platform.trustlists.publish(PROD)
    assert second.sequence_number == 3
    assert _verify(platform, second).sequence_number == 3


# -- services: operators, withdrawal, history ---------------------------------------------------------
def test_add_service_lists_it_granted_and_republishes(
    platform: Platform, tsa_certificate: x509.Certificate, tmp_path: Path
) -> None:
    platform.trustlists.publish(PROD)
    publication = platform.trustlists.add_service(
        PROD, tsa_certificate, tsl.SERVICE_TSA, name="ehealth-certs TSA", actor="operator:alice"
    )
    assert publication.sequence_number == 2
    services = _services(_verify(platform, publication))
    tsa = services["ehealth-certs TSA"]
    assert tsa.service_type == tsl.SERVICE_TSA and tsa.status == GRANTED
    assert tsa.certificates == (tsa_certificate,)
    _judges_accept(platform, publication, tmp_path)
    with pytest.raises(DomainError) as err:
        platform.trustlists.add_service(PROD, tsa_certificate, tsl.SERVICE_TSA, actor="operator:alice")
    assert err.value.kind is ErrorKind.CONFLICT
    with pytest.raises(DomainError) as err:
        platform.trustlists.add_service(PROD, tsa_certificate, "not a uri", actor="operator:alice")
    assert err.value.kind is ErrorKind.BAD_REQUEST
    issuing = platform.rt.environments[PROD].pki.issuing.certificate
    with pytest.raises(DomainError) as err:  # a CA is listed from the issuers table already
        platform.trustlists.add_service(PROD, issuing, tsl.SERVICE_CA_PKC, actor="operator:alice")
    assert err.value.kind is ErrorKind.CONFLICT


def test_withdraw_keeps_the_service_listed_with_its_history(
    platform: Platform, clock: FixedClock, tls_certificate: x509.Certificate, tmp_path: Path
) -> None:
    added_at = clock.now().replace(microsecond=0)
    platform.trustlists.add_service(PROD, tls_certificate, tsl.SERVICE_UNSPECIFIED, actor="operator:alice")
    clock.advance(timedelta(days=2))
    publication = platform.trustlists.withdraw(
        PROD, tsl.fingerprint(tls_certificate).upper(), actor="operator:bob"
    )
    verified = _verify(platform, publication)
    tls = _services(verified)["tsl.ehealth-certs.example"]
    assert tls.status == WITHDRAWN and tls.status_since == clock.now().replace(microsecond=0)
    assert tls_certificate not in verified.trust_anchors()
    history = etree.fromstring(publication.xml).findall(".//" + tsl.q(tsl.TSL_NS, "ServiceHistoryInstance"))
    assert [(h.findtext(tsl.q(tsl.TSL_NS, "ServiceStatus")), h.findtext(tsl.q(tsl.TSL_NS, "StatusStartingTime")))
            for h in history] == [(GRANTED, tsl.format_time(added_at))]  # fmt: skip
    _judges_accept(platform, publication, tmp_path)
    with pytest.raises(DomainError) as err:
        platform.trustlists.withdraw(PROD, tsl.fingerprint(tls_certificate), actor="operator:bob")
    assert err.value.kind is ErrorKind.CONFLICT
    with pytest.raises(DomainError) as err:
        platform.trustlists.withdraw(PROD, "ab" * 32, actor="operator:bob")
    assert err.value.kind is ErrorKind.NOT_FOUND
    with pytest.raises(DomainError) as err:
        platform.trustlists.withdraw(PROD, "not-a-fingerprint", actor="operator:bob")
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_a_withdrawn_ca_stays_listed_as_withdrawn_across_restarts(
    platform: Platform, settings: Settings, clock: FixedClock
) -> None:
    first = platform.trustlists.publish(PROD)
    issuing = platform.rt.environments[PROD].pki.issuing.certificate
    clock.advance(timedelta(hours=1))
    publication = platform.trustlists.withdraw(PROD, tsl.fingerprint(issuing), actor="operator:bob")
    assert publication.sequence_number == first.sequence_number + 1
    with platform.rt.db.read() as s:
        row = s.get(Issuer, platform.rt.environments[PROD].issuer_ids["issuing"])
        assert row is not None and row.status == "withdrawn"
    ca = next(s for s in _verify(platform, publication).services if s.certificates == (issuing,))
    assert ca.status == WITHDRAWN and ca.service_type == tsl.SERVICE_CA_PKC
    assert b"<ServiceHistory>" in publication.xml
    platform.close()
    again = Platform.start(settings, clock, create_pki=False)
    try:
        assert (
            again.maintenance() == []
        )  # nothing changed: no new publication, and the CA is not "re-granted"
        assert again.trustlists.latest(PROD) == publication
        assert again.trustlists.due_reason(PROD) is None
    finally:
        again.close()


def test_a_new_ca_republishes_automatically(platform: Platform, clock: FixedClock) -> None:
    assert platform.maintenance() == []
    first = platform.trustlists.latest(PROD)
    assert first is not None and first.sequence_number == 1
    assert platform.trustlists.latest(ACPT) is not None
    key = ec.generate_private_key(ec.SECP256R1())
    new_ca = make_cert(key, "ehealth-certs Production Issuing CA 002", ca=True)
    clock.advance(timedelta(minutes=10))
    # What _register_issuers does at start when the PKI on disk holds a new CA certificate.
    with platform.rt.db.transaction() as s:
        s.add(
            Issuer(
                environment="production", role="issuing", subject=new_ca.subject.rfc4514_string(), ski="00" * 20,
                name_hash_sha1="0" * 40, key_hash_sha1="0" * 40,
                certificate_der=new_ca.public_bytes(serialization.Encoding.DER),
                not_before=new_ca.not_valid_before_utc, not_after=new_ca.not_valid_after_utc,
                status="active", status_since=clock.now(),
            )
        )  # fmt: skip
    assert platform.trustlists.due_reason(PROD) == "services-changed"
    assert platform.trustlists.due_reason(ACPT) is None
    assert platform.maintenance() == []
    second = platform.trustlists.latest(PROD)
    assert second is not None and second.sequence_number == 2
    listed = _services(_verify(platform, second))["ehealth-certs Production Issuing CA 002"]
    assert listed.status == GRANTED and listed.service_type == tsl.SERVICE_CA_PKC
    assert platform.trustlists.latest(ACPT).sequence_number == 1  # type: ignore[union-attr]


# -- NextUpdate -----------------------------------------------------------------------------------------
def test_republished_when_a_third_of_the_validity_remains(platform: Platform, clock: FixedClock) -> None:
    first = platform.trustlists.publish(PROD)
    platform.trustlists.publish(ACPT)
    assert platform.trustlists.due_reason(PROD) is None
    threshold = first.next_update - timedelta(days=10)  # 30-day lists: republish with 10 days left
    clock.set(threshold - timedelta(seconds=1))
    assert platform.trustlists.refresh() == []
    assert platform.trustlists.latest(PROD) == first
    clock.set(threshold)
    assert platform.trustlists.due_reason(PROD) == "next-update"
    assert platform.maintenance() == []
    second = platform.trustlists.latest(PROD)
    assert second is not None and second.sequence_number == 2
    assert second.issue_time == threshold and second.next_update == threshold + timedelta(days=30)
    assert second.next_update > first.next_update  # consumers never reach the old NextUpdate
    assert _verify(platform, second).sequence_number == 2


def test_next_update_is_capped_at_six_months(settings: Settings, clock: FixedClock) -> None:
    capped = settings.model_copy(update={"tsl_next_update_days": 183})
    clock.set(clock.now().replace(month=8, day=31))  # + 6 months = 28 February: shorter than 183 days
    p = Platform.start(capped, clock, create_pki=False)
    try:
        publication = p.trustlists.publish(PROD)
        assert publication.next_update == clock.now().replace(year=2027, month=2, day=28, microsecond=0)
        _verify(p, publication)
    finally:
        p.close()


# -- the URLs (in process; the live server is exercised in test_cli.py) ---------------------------------
def test_urls_serve_the_exact_bytes_and_the_digest(platform: Platform) -> None:
    from ehealth_certs.web.app import create_app

    with TestClient(create_app(platform, maintenance_interval=None)) as client:
        xml = client.get("/tsl/production.xml")  # first demand publishes
        assert xml.status_code == 200 and xml.headers["content-type"] == tsl.TSL_MIME_TYPE
        latest = platform.trustlists.latest(PROD)
        assert latest is not None and xml.content == latest.xml
        sha2 = client.get("/tsl/production.sha2")
        assert sha2.status_code == 200 and sha2.content == tsl.sha2_digest_file(xml.content)
        etag = xml.headers["etag"]
        assert client.get("/tsl/production.xml", headers={"If-None-Match": etag}).status_code == 304
        assert client.get("/tsl/staging.xml").status_code == 404
        index = client.get("/tsl/").json()
        assert index["production"]["sequence_number"] == 1
        assert index["production"]["url"].endswith("/tsl/production.xml")
