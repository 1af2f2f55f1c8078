"""The platform's trusted-list publication service: one signed TS 119 612 v6 list per environment.

What is listed (one TSP, the platform as scheme operator):

=====================  ===================================================  ==================================
source                 service                                              ServiceTypeIdentifier
=====================  ===================================================  ==================================
``issuers`` root       the root CA                                          ``…/Svctype/CA/PKC``
``issuers`` issuing    every issuing CA (old ones too, withdrawn or not)    ``…/Svctype/CA/PKC``
``issuers`` ocsp       the delegated OCSP responder certificate             ``…/Svctype/Certstatus/OCSP``
``issuers`` etkra      the EtkRA (ETK) signing certificate                  ``…/Svctype/unspecified``
operator               ``ehcerts tl add-service --type URI`` (TLS, TSA…)    as given (TSA: ``…/Svctype/TSA``)
=====================  ===================================================  ==================================

ETSI defines no type for an ETK signer, hence ``unspecified``; ``Certstatus/OCSP`` is the closest ETSI type
for a delegated OCSP responder. The list signer itself is not listed: clients pin it
(``ehcerts tl signer-cert``).

Publication rules: TSLSequenceNumber = previous + 1, never reused (a ``signing`` row with UNIQUE(environment,
sequence) is committed before the signature); NextUpdate = ListIssueDateTime + ``tsl_next_update_days``
(at most 6 months); a new list is published when the listed services changed (a CA registered or withdrawn,
an operator service added or withdrawn) or when less than a third of the list's validity remains.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ehealth_certs.clock import utc
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.ceremony import ORGANISATION
from ehealth_certs.pki.issuer import sign_trusted_list
from ehealth_certs.pki.tsl import (
    MAX_LIST_PERIOD_MONTHS,
    SERVICE_CA_PKC,
    SERVICE_OCSP,
    SERVICE_UNSPECIFIED,
    STATUS_GRANTED,
    STATUS_WITHDRAWN,
    add_months,
    fingerprint,
    format_time,
)
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models import Issuer, TslOperatorService, TslPublication, TslStatusChange
from ehealth_certs.trustlist.publish import (
    SchemeInfo,
    ServiceHistoryEntry,
    TrustService,
    build_trusted_list,
    sha2_digest_file,
)

__all__ = [
    "ISSUER_SERVICE_TYPES",
    "Publication",
    "TrustListService",
    "list_url",
    "normalise_fingerprint",
    "sha2_url",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Roles of the ``issuers`` table that are listed, in list order, with their service type.
ISSUER_SERVICE_TYPES: dict[str, str] = {
    "root": SERVICE_CA_PKC,
    "issuing": SERVICE_CA_PKC,
    "ocsp": SERVICE_OCSP,
    "etkra": SERVICE_UNSPECIFIED,
}
_ISSUER_STATUS = {"active": STATUS_GRANTED, "withdrawn": STATUS_WITHDRAWN}
_SIGNING, _PUBLISHED = "signing", "published"
_ATTEMPTS = 3  # a concurrent publisher (server + operator CLI) may take the same sequence first


def list_url(base_url: str, environment: Environment) -> str:
    return f"{base_url.rstrip('/')}/tsl/{environment.value}.xml"


def sha2_url(base_url: str, environment: Environment) -> str:
    return f"{base_url.rstrip('/')}/tsl/{environment.value}.sha2"


def normalise_fingerprint(value: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lowercase hex digits (colons, spaces and case ignored)."""
    text = value.replace(":", "").replace(" ", "").strip().lower()
    if text.startswith("sha256"):
        text = text[len("sha256") :].lstrip("=")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise DomainError(ErrorKind.BAD_REQUEST, f"{value!r} is not a SHA-256 fingerprint (64 hex digits)")
    return text


@dataclass(frozen=True)
class Publication:
    environment: Environment
    sequence_number: int
    issue_time: datetime
    next_update: datetime
    sha256: str
    xml: bytes  # the exact signed bytes: serve them unchanged

    @property
    def sha2(self) -> bytes:
        """The ``.sha2`` companion file."""
        return sha2_digest_file(self.xml)


def _second(at: datetime) -> datetime:
    # The list carries whole seconds; storing the same value keeps history order and the digest stable.
    return utc(at).replace(microsecond=0)


def _common_name(certificate: x509.Certificate) -> str:
    cns = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else certificate.subject.rfc4514_string()


def _services_digest(services: Sequence[TrustService]) -> str:
    canonical = [
        {
            "fp": fingerprint(s.certificate),
            "type": s.service_type,
            "name": s.name,
            "status": s.status,
            "since": format_time(s.status_since),
            "history": [[h.status, format_time(h.since)] for h in s.history],
        }
        for s in services
    ]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _snapshot(environment: Environment, row: TslPublication) -> Publication:
    assert row.xml is not None and row.sha256 is not None  # published rows always have both
    return Publication(
        environment=environment,
        sequence_number=row.sequence,
        issue_time=utc(row.issue_time),
        next_update=utc(row.next_update),
        sha256=row.sha256,
        xml=row.xml,
    )


class TrustListService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # -- what is listed -----------------------------------------------------------------------------
    def scheme(self, environment: Environment) -> SchemeInfo:
        base = self.rt.settings.base_url
        return SchemeInfo(
            # Must equal the signer certificate's O (TS 119 612 clause 5.7.1).
            operator_name=ORGANISATION,
            scheme_name=f"{ORGANISATION} trusted list ({environment.value})",
            distribution_uri=list_url(base, environment),
            information_uri=f"{base}/tsl/",
            environment=environment.value,
            electronic_address=f"mailto:{self.rt.settings.mail_from}",
        )

    def signer_certificate(self, environment: Environment) -> x509.Certificate:
        """The certificate clients pin (``ehcerts truststore update --signer-cert``)."""
        return self.rt.environments[environment].pki.tsl.certificate

    def services(self, environment: Environment) -> list[TrustService]:
        """The services the next list would name (issuer status changes not yet recorded included)."""
        with self.rt.db.transaction() as s:
            self._sync_issuer_history(s, environment)
            services = self._load_services(s, environment)
            s.rollback()  # a read: the recorded history is written only with a publication
        return services

    def _sync_issuer_history(self, s: Session, environment: Environment) -> None:
        """Mirror each listed issuer's current status into the history (``issuers`` keeps only the last)."""
        for issuer in _issuers(s, environment):
            certificate = x509.load_der_x509_certificate(issuer.certificate_der)
            status = _ISSUER_STATUS.get(issuer.status)
            if status is None:
                raise DomainError(
                    ErrorKind.CONFIGURATION, f"issuer {issuer.subject}: unknown status {issuer.status!r}"
                )
            self._record(s, environment, fingerprint(certificate), status, issuer.status_since, "system")

    def _record(
        self, s: Session, environment: Environment, fp: str, status: str, since: datetime, actor: str
    ) -> bool:
        """Append ``status`` to the history unless it is already the current one; True when appended."""
        last = s.execute(
            select(TslStatusChange)
            .where(TslStatusChange.environment == environment.value, TslStatusChange.fingerprint == fp)
            .order_by(TslStatusChange.since.desc())
            .limit(1)
        ).scalar_one_or_none()
        if last is not None and last.status == status:
            return False
        at = _second(since)
        if last is not None and at <= utc(last.since):
            at = utc(last.since) + timedelta(seconds=1)  # history must be strictly ordered in the list
        s.add(TslStatusChange(environment=environment.value, fingerprint=fp, status=status, since=at,
                              recorded_by=actor))  # fmt: skip
        s.flush()
        return True

    def _history(self, s: Session, environment: Environment) -> dict[str, list[TslStatusChange]]:
        rows = s.execute(
            select(TslStatusChange)
            .where(TslStatusChange.environment == environment.value)
            .order_by(TslStatusChange.since.desc())
        ).scalars()
        out: dict[str, list[TslStatusChange]] = {}
        for row in rows:
            out.setdefault(row.fingerprint, []).append(row)
        return out

    def _load_services(self, s: Session, environment: Environment) -> list[TrustService]:
        history = self._history(s, environment)

        def service(certificate: x509.Certificate, service_type: str, name: str) -> TrustService:
            entries = history.get(fingerprint(certificate))
            if not entries:
                raise DomainError(ErrorKind.INTERNAL, f"{name}: no status recorded")
            current, *older = entries
            return TrustService(
                certificate=certificate,
                service_type=service_type,
                name=name,
                status=current.status,
                status_since=utc(current.since),
                history=tuple(ServiceHistoryEntry(e.status, utc(e.since)) for e in older),
            )

        order = list(ISSUER_SERVICE_TYPES)
        issuers = sorted(_issuers(s, environment), key=lambda i: (order.index(i.role), i.id))
        out: list[TrustService] = []
        for issuer in issuers:
            certificate = x509.load_der_x509_certificate(issuer.certificate_der)
            out.append(service(certificate, ISSUER_SERVICE_TYPES[issuer.role], _common_name(certificate)))
        operator_rows = s.execute(
            select(TslOperatorService)
            .where(TslOperatorService.environment == environment.value)
            .order_by(TslOperatorService.id)
        ).scalars()
        for row in operator_rows:
            out.append(
                service(x509.load_der_x509_certificate(row.certificate_der), row.service_type, row.name)
            )
        return out

    # -- publication --------------------------------------------------------------------------------
    def latest(self, environment: Environment) -> Publication | None:
        """The newest published list (read-only; the public URL serves it)."""
        with self.rt.db.read() as s:
            row = s.execute(
                select(TslPublication)
                .where(TslPublication.environment == environment.value, TslPublication.state == _PUBLISHED)
                .order_by(TslPublication.sequence.desc())
                .limit(1)
            ).scalar_one_or_none()
        return None if row is None else _snapshot(environment, row)

    def publish(
        self, environment: Environment, *, actor: str = "system", reason: str = "operator"
    ) -> Publication:
        """Sign and store the next list (sequence + 1) and return it."""
        row_id, services, sequence, issue, next_update = _retry(
            lambda: self._reserve(environment, actor=actor, reason=reason)
        )
        er = self.rt.environments[environment]
        unsigned = build_trusted_list(
            scheme=self.scheme(environment),
            services=services,
            sequence_number=sequence,
            issue_time=issue,
            next_update=next_update,
        )
        xml = sign_trusted_list(
            unsigned, signer=er.pki.tsl.signer, signer_certificate=er.pki.tsl.certificate, signing_time=issue
        )
        sha256 = hashlib.sha256(xml).hexdigest()
        with self.rt.db.transaction() as s:
            row = s.get(TslPublication, row_id)
            assert row is not None
            row.xml, row.sha256, row.state = xml, sha256, _PUBLISHED
            self.rt.audit.append(
                s,
                actor=actor,
                action="tsl.published",
                obj=f"{environment.value}/tsl/{sequence}",
                reason=reason,
                sha256=sha256,
                services=len(services),
                next_update=format_time(next_update),
            )
        log.info("published the %s trusted list %d (%s)", environment.value, sequence, reason)
        return Publication(environment, sequence, issue, next_update, sha256, xml)

    def _reserve(
        self, environment: Environment, *, actor: str, reason: str
    ) -> tuple[int, list[TrustService], int, datetime, datetime]:
        issue = _second(self.rt.clock.now())
        days = timedelta(days=self.rt.settings.tsl_next_update_days)
        next_update = min(issue + days, add_months(issue, MAX_LIST_PERIOD_MONTHS))
        with self.rt.db.transaction() as s:
            self._sync_issuer_history(s, environment)
            services = self._load_services(s, environment)
            last = s.execute(
                select(func.max(TslPublication.sequence)).where(
                    TslPublication.environment == environment.value
                )
            ).scalar()
            sequence = int(last or 0) + 1
            row = TslPublication(
                environment=environment.value,
                sequence=sequence,
                state=_SIGNING,
                issue_time=issue,
                next_update=next_update,
                services_digest=_services_digest(services),
                reason=reason[:64],
                published_by=actor[:100],
            )
            s.add(row)
            s.flush()
            row_id = row.id
        return row_id, services, sequence, issue, next_update

    def due_reason(self, environment: Environment) -> str | None:
        """Why a new list is needed now (``first``, ``services-changed``, ``next-update``), or None."""
        with self.rt.db.transaction() as s:
            last = s.execute(
                select(TslPublication.services_digest, TslPublication.issue_time, TslPublication.next_update)
                .where(TslPublication.environment == environment.value, TslPublication.state == _PUBLISHED)
                .order_by(TslPublication.sequence.desc())
                .limit(1)
            ).one_or_none()
            self._sync_issuer_history(s, environment)
            digest = _services_digest(self._load_services(s, environment))
            s.rollback()  # only a check: the history is recorded by the publication itself
        if last is None:
            return "first"
        if last.services_digest != digest:
            return "services-changed"
        issue, next_update = utc(last.issue_time), utc(last.next_update)
        # Republish while a third of the validity remains, so consumers polling daily never see it expire.
        if self.rt.clock.now() >= next_update - (next_update - issue) / 3:
            return "next-update"
        return None

    def publish_if_due(self, environment: Environment) -> Publication | None:
        reason = self.due_reason(environment)
        return None if reason is None else self.publish(environment, reason=reason)

    def refresh(self) -> list[Publication]:
        """Background round (``Platform.maintenance``): publish every environment whose list is due."""
        return [p for env in self.rt.environments if (p := self.publish_if_due(env)) is not None]

    def current_or_publish(self, environment: Environment) -> Publication:
        """What the public URL serves: the latest list, published on first demand."""
        latest = self.latest(environment)
        return latest if latest is not None else self.publish(environment, reason="first")

    # -- operator changes ---------------------------------------------------------------------------
    def add_service(
        self,
        environment: Environment,
        certificate: x509.Certificate,
        service_type: str,
        *,
        name: str | None = None,
        actor: str,
    ) -> Publication:
        """List an extra certificate (status granted from now) and publish the list."""
        if ":" not in service_type or any(c.isspace() for c in service_type):
            raise DomainError(ErrorKind.BAD_REQUEST, f"service type {service_type!r} is not a URI")
        label = (name or _common_name(certificate)).strip()
        if not label:
            raise DomainError(ErrorKind.BAD_REQUEST, "the service name is empty")
        fp = fingerprint(certificate)
        now = self.rt.clock.now()
        with self.rt.db.transaction() as s:
            self._sync_issuer_history(s, environment)
            if fp in self._listed_fingerprints(s, environment):
                raise DomainError(
                    ErrorKind.CONFLICT, f"certificate sha256:{fp} is already listed in the {environment} list"
                )
            s.add(
                TslOperatorService(
                    environment=environment.value,
                    fingerprint=fp,
                    certificate_der=certificate.public_bytes(serialization.Encoding.DER),
                    service_type=service_type,
                    name=label,
                    added_by=actor[:100],
                    added_at=now,
                )
            )
            self._record(s, environment, fp, STATUS_GRANTED, now, actor)
            self.rt.audit.append(
                s,
                actor=actor,
                action="tsl.service-added",
                obj=f"{environment.value}/tsl/{fp}",
                subject=certificate.subject.rfc4514_string(),
                service_type=service_type,
            )
        return self.publish(environment, actor=actor, reason="service-added")

    def withdraw(self, environment: Environment, fp: str, *, actor: str) -> Publication:
        """Withdraw a listed service (an operator service or a CA/OCSP/EtkRA certificate) and publish.

        The service stays listed with status withdrawn and its history; withdrawing an issuer also marks
        it withdrawn in ``issuers``.
        """
        fp = normalise_fingerprint(fp)
        now = self.rt.clock.now()
        with self.rt.db.transaction() as s:
            self._sync_issuer_history(s, environment)
            if fp not in self._listed_fingerprints(s, environment):
                raise DomainError(
                    ErrorKind.NOT_FOUND, f"certificate sha256:{fp} is not listed in the {environment} list"
                )
            for issuer in _issuers(s, environment):
                if fingerprint(x509.load_der_x509_certificate(issuer.certificate_der)) == fp:
                    issuer.status, issuer.status_since = "withdrawn", now
                    self.rt.audit.append(
                        s, actor=actor, action="ca.withdrawn", obj=f"{environment.value}/{issuer.role}",
                        subject=issuer.subject, ski=issuer.ski,
                    )  # fmt: skip
            if not self._record(s, environment, fp, STATUS_WITHDRAWN, now, actor):
                raise DomainError(ErrorKind.CONFLICT, f"certificate sha256:{fp} is already withdrawn")
            self.rt.audit.append(
                s, actor=actor, action="tsl.service-withdrawn", obj=f"{environment.value}/tsl/{fp}"
            )
        return self.publish(environment, actor=actor, reason="service-withdrawn")

    def _listed_fingerprints(self, s: Session, environment: Environment) -> set[str]:
        rows = s.execute(
            select(TslStatusChange.fingerprint).where(TslStatusChange.environment == environment.value)
        ).scalars()
        return set(rows)


def _issuers(s: Session, environment: Environment) -> list[Issuer]:
    query = select(Issuer).where(
        Issuer.environment == environment.value, Issuer.role.in_(ISSUER_SERVICE_TYPES)
    )
    return list(s.execute(query).scalars())


def _retry(action: Callable[[], T]) -> T:
    for attempt in range(_ATTEMPTS):
        try:
            return action()
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise DomainError(
                    ErrorKind.CONFLICT, "another process keeps publishing the trusted list; try again"
                ) from None
    raise AssertionError("unreachable")
