"""Renewal window and validity limits at their exact boundaries, with a frozen clock (SQLite and PostgreSQL).

The replacement period opens 90 days before notAfter (ehealth-reference §3.6, §13.2). One second before it the
request is refused with the opening date; from its first second up to notAfter itself (inclusive, RFC 5280)
it is accepted as a replacement; after notAfter the old certificate is gone and the request is a NEW one.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ehealth_certs.clock import utc
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.profiles import add_months, max_not_after
from ehealth_certs.ra.service import REPLACEMENT_PERIOD
from ehealth_certs.storage.models import AuditEvent, Certificate, CertificateRequest
from tests.ra.helpers import CONTACT, add_acceptance_project, add_doctor, keystore_dir, manager

pytestmark = pytest.mark.usefixtures("trust_citizen_ca")

A, B, C = "79121430944", "69022608813", "64032764903"
ONE_S = timedelta(seconds=1)


def _rows(platform) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with platform.rt.db.read() as s:
        return (
            s.execute(select(func.count()).select_from(CertificateRequest)).scalar_one(),
            s.execute(select(func.count()).select_from(Certificate)).scalar_one(),
            s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
        )


def _info(m, card, pki: str) -> dict:  # type: ignore[no-untyped-def]
    return next(i for i in m.status(card) if i["publicKeyIdentifier"] == pki)


def test_renewal_window_boundaries(platform, clock, eid_factory, tmp_path: Path) -> None:
    people = {}
    for ssin in (A, B, C):
        # default names: eid_factory caches cards per SSIN for the whole session, other tests expect them
        add_doctor(platform, ssin)
        people[ssin] = eid_factory(ssin, tmp=tmp_path)
    m = manager(platform, clock)
    first = {
        ssin: m.request(p.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT)
        for ssin, p in people.items()
    }
    cert_a = first[A].certificate
    assert cert_a is not None
    not_after = cert_a.not_valid_after_utc
    opens = not_after - REPLACEMENT_PERIOD
    assert (
        _info(m, people[A].card, first[A].public_key_identifier)["replacementPeriodStartDate"]
        == opens.isoformat()
    )

    # window start - 1 s: refused, with the date, and nothing stored
    clock.set(opens - ONE_S)
    before = _rows(platform)
    with pytest.raises(DomainError) as err:
        m.renew(people[A].card, keystore=first[A].keystore, password="pw", contact=CONTACT)
    assert err.value.kind is ErrorKind.RENEWAL_NOT_OPEN
    assert opens.isoformat() in err.value.detail and err.value.params["opens"] == opens.isoformat()
    assert _rows(platform) == before
    assert _info(m, people[A].card, first[A].public_key_identifier)["replaceable"] is False

    # window start: accepted as a replacement
    clock.set(opens)
    assert _info(m, people[A].card, first[A].public_key_identifier)["replaceable"] is True
    renewed = m.renew(people[A].card, keystore=first[A].keystore, password="pw", contact=CONTACT)
    assert renewed.delivered and renewed.replaces_certificate == first[A].public_key_identifier
    assert renewed.certificate is not None and renewed.certificate.subject == cert_a.subject

    # both certificates are valid until the old one expires (inclusive), then only the new one
    for at, old_status in ((not_after, "VALID_ACTIVE"), (not_after + ONE_S, "EXPIRED")):
        clock.set(at)
        statuses = {
            i["publicKeyIdentifier"]: i["authenticationCertificateStatus"] for i in m.status(people[A].card)
        }
        assert statuses == {
            first[A].public_key_identifier: old_status,
            renewed.public_key_identifier: "VALID_ACTIVE",
        }

    # notAfter exactly: still a replacement
    clock.set(not_after)
    at_expiry = m.renew(people[B].card, keystore=first[B].keystore, password="pw", contact=CONTACT)
    assert at_expiry.replaces_certificate == first[B].public_key_identifier

    # one second after notAfter: a NEW certificate, no ReplacesCertificate
    clock.set(not_after + ONE_S)
    after = m.renew(people[C].card, keystore=first[C].keystore, password="pw", contact=CONTACT)
    assert after.delivered and after.replaces_certificate is None
    with platform.rt.db.read() as s:
        req = s.execute(
            select(CertificateRequest).where(
                CertificateRequest.public_key_identifier == after.public_key_identifier
            )
        ).scalar_one()
        assert req.replaces_certificate_id is None


@pytest.mark.parametrize(
    ("environment", "months"), [(Environment.PRODUCTION, 36), (Environment.ACCEPTANCE, 12)]
)
def test_validity_is_the_profile_period_inclusive(platform, clock, eid_factory, tmp_path: Path,
                                                  environment: Environment, months: int) -> None:  # fmt: skip
    add_doctor(platform, A)
    add_acceptance_project(platform, "p1", A)
    person = eid_factory(A, tmp=tmp_path)
    clock.set(clock.now().replace(month=1, day=31))  # a month end: add_months must clamp, not overflow
    out = manager(platform, clock, environment).request(
        person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT, project="p1"
    )
    cert = out.certificate
    assert cert is not None
    assert cert.not_valid_before_utc == clock.now()
    assert (
        cert.not_valid_after_utc
        == add_months(clock.now(), months) - ONE_S
        == max_not_after(clock.now(), months)
    )
    # the inclusive length never exceeds the period: notAfter + 1 s is exactly `months` later
    assert cert.not_valid_after_utc + ONE_S == add_months(cert.not_valid_before_utc, months)


def test_never_beyond_the_issuing_ca(platform, clock, eid_factory, tmp_path: Path) -> None:
    issuing = platform.rt.environments[Environment.PRODUCTION].pki.issuing.certificate
    ca_end = issuing.not_valid_after_utc
    latest_start = add_months(ca_end + ONE_S, -36)
    assert max_not_after(latest_start, 36) == ca_end
    add_doctor(platform, A)
    add_doctor(platform, B)
    m = manager(platform, clock)

    # the last second at which a full 36-month certificate still fits: issued, ending with the CA
    clock.set(latest_start)
    fits = m.request(eid_factory(A, tmp=tmp_path).card, keystore_dir=keystore_dir(tmp_path), password="pw",
                     contact=CONTACT)  # fmt: skip
    assert fits.certificate is not None and fits.certificate.not_valid_after_utc == ca_end

    # one second later it would outlive the CA: refused (not truncated), nothing stored, keystore removed
    clock.set(latest_start + ONE_S)
    before = _rows(platform)
    person_b = eid_factory(B, tmp=tmp_path)
    folder = tmp_path / "refused"
    with pytest.raises(DomainError) as err:
        m.request(person_b.card, keystore_dir=folder, password="pw", contact=CONTACT)
    assert err.value.kind is ErrorKind.CONFLICT
    assert _rows(platform) == before
    assert list(folder.iterdir()) == []
    with platform.rt.db.read() as s:
        latest = s.execute(select(func.max(Certificate.not_after))).scalar_one()
    assert utc(latest) <= ca_end
