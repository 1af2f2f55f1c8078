"""The issuance cycle (ARCHITECTURE rule 2; quality-bar §3).

1. Transaction 1: reserve a fresh random serial, lint the to-be-signed certificate, store the intent row
   (status ``signing``, TBS hash) and an audit event. Commit.
2. Sign once through ``pki/issuer.py``.
3. Transaction 2: store the DER, status ``issued``, the pre-signed OCSP "good" and the audit event with the
   full DER. Commit. Only then does anyone see the certificate.
4. The reconciler revokes (``superseded``) any ``signing`` row left by a crash, so CRL and OCSP cover a
   certificate that may exist, and the request is issued again with a new serial.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import signal
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import issuer as pki_issuer
from ehealth_certs.pki.ceremony import leaf_urls
from ehealth_certs.pki.names import EHealthName, build_subject
from ehealth_certs.pki.profiles import leaf_profile, validity_window
from ehealth_certs.ra.states import CertState, RequestState, transition_cert, transition_request
from ehealth_certs.ra.status import StatusService
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models import Certificate, CertificateRequest, table_of

log = logging.getLogger(__name__)

_CERTS = table_of(Certificate)
_INSERT_CERT = insert(_CERTS)
# The state tables decide which moves are legal; the WHERE clauses make them atomic.
_STORE_CERT = (
    update(_CERTS)
    .where(_CERTS.c.id == bindparam("cert_id"), _CERTS.c.status == CertState.SIGNING)
    .values(
        status=transition_cert(CertState.SIGNING, CertState.ISSUED),
        der=bindparam("cert_der"),
        issued_at=bindparam("at"),
    )
)
_REQUESTS = table_of(CertificateRequest)
# a certificate of the request being signed or issued (a revoked one, e.g. abandoned by the reconciler, is not)
_IN_FLIGHT = select(_CERTS.c.id).where(
    _CERTS.c.request_id == bindparam("request_id"),
    _CERTS.c.status.in_([CertState.SIGNING, CertState.ISSUED]),
)
_REQUEST_ISSUED = (
    update(_REQUESTS)
    .where(_REQUESTS.c.id == bindparam("request_id"), _REQUESTS.c.status == RequestState.APPROVED)
    .values(status=transition_request(RequestState.APPROVED, RequestState.ISSUED))
)


def failpoint(name: str) -> None:
    """Crash-test hook: ``EHCERTS_FAILPOINT=<name>`` kills this process at that point (tests only)."""
    if os.environ.get("EHCERTS_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class Intent:
    """A recorded intent: the certificate row exists (status ``signing``); the signature does not yet."""

    request_id: str
    environment: Environment
    cert_id: int
    issuer_id: int
    prepared: pki_issuer.PreparedCertificate


@dataclass(frozen=True)
class Issued:
    certificate_id: int
    certificate: x509.Certificate


class IssuanceService:
    def __init__(self, rt: Runtime, status: StatusService) -> None:
        self.rt = rt
        self.status = status

    def prepare(
        self, environment: Environment, holder: EHealthName, public_key: object
    ) -> pki_issuer.PreparedCertificate:
        """Build and lint the to-be-signed certificate (no database: callers do it before taking locks).
        The subject comes from RA-verified data, never from the CSR."""
        er = self.rt.environments[environment]
        profile = leaf_profile(environment)
        not_before, not_after = validity_window(
            profile, self.rt.clock.now(), er.issuing.certificate.not_valid_after_utc
        )
        crl_url, ocsp_url, ca_issuers_url = leaf_urls(environment, self.rt.settings.base_url)
        return pki_issuer.prepare_leaf(
            ca=er.issuing,
            profile=profile,
            subject=build_subject(holder),
            public_key=public_key,  # type: ignore[arg-type]
            serial=pki_issuer.random_serial(),
            not_before=not_before,
            not_after=not_after,
            crl_url=crl_url,
            ocsp_url=ocsp_url,
            ca_issuers_url=ca_issuers_url,
        )

    def insert_intent(
        self,
        session: Session,
        *,
        request_id: str,
        environment: Environment,
        subject_dn: str,
        public_key_identifier: str,
        spki_sha256: str,
        prepared: pki_issuer.PreparedCertificate,
    ) -> Intent:
        """Step 1 inside the caller's transaction: the certificate row (status ``signing``) and its audit
        event, written with Core statements (the issuance hot path). The caller commits, then calls
        ``complete`` outside the transaction."""
        issuer_id = self.rt.environments[environment].issuer_ids["issuing"]
        serial = format(prepared.serial, "x")
        tbs_sha256 = hashlib.sha256(prepared.tbs_der).hexdigest()
        try:
            result = session.connection().execute(
                _INSERT_CERT,
                {
                    "issuer_id": issuer_id,
                    "serial": serial,
                    "request_id": request_id,
                    "environment": environment.value,
                    "status": CertState.SIGNING,
                    "subject_dn": subject_dn,
                    "public_key_identifier": public_key_identifier,
                    "spki_sha256": spki_sha256,
                    "not_before": prepared.not_before,
                    "not_after": prepared.not_after,
                    "tbs_sha256": tbs_sha256,
                    "created_at": self.rt.clock.now(),
                },
            )
        except IntegrityError as exc:  # 159 random bits: a collision means something is badly wrong
            raise DomainError(ErrorKind.INTERNAL, "serial number collision; nothing was signed") from exc
        assert result.inserted_primary_key is not None
        cert_id = int(result.inserted_primary_key[0])
        self.rt.audit.append(
            session,
            actor="system",
            action="certificate.signing",
            obj=f"{environment}/serial/{serial}",
            request=request_id,
            tbs_sha256=tbs_sha256,
        )
        return Intent(request_id, environment, cert_id, issuer_id, prepared)

    def record_intent(self, session: Session, request_id: str) -> Intent:
        """Step 1 for a request already stored and APPROVED (operator approval, reconciler)."""
        req = session.get(CertificateRequest, request_id, with_for_update=True)  # concurrent issue() waits
        if req is None:
            raise DomainError(ErrorKind.NOT_FOUND, f"no request {request_id}")
        if req.status != RequestState.APPROVED:
            raise DomainError(
                ErrorKind.INVALID_TRANSITION, f"request {request_id} is {req.status}, not APPROVED"
            )
        if session.connection().execute(_IN_FLIGHT, {"request_id": request_id}).first():
            raise DomainError(ErrorKind.CONFLICT, f"request {request_id} is already being issued")
        env = Environment(req.environment)
        holder = EHealthName(req.actor_type, req.actor_id, req.holder_name, req.application_id)
        prepared = self.prepare(env, holder, x509.load_der_x509_csr(req.csr_der).public_key())
        return self.insert_intent(
            session,
            request_id=req.id,
            environment=env,
            subject_dn=req.subject_dn,
            public_key_identifier=req.public_key_identifier,
            spki_sha256=req.spki_sha256,
            prepared=prepared,
        )

    def issue(self, request_id: str) -> Issued:
        """Issue the certificate of an APPROVED request: intent (own transaction), then ``complete``."""
        with self.rt.db.transaction() as s:
            intent = self.record_intent(s, request_id)
        return self.complete(intent)

    def complete(self, intent: Intent) -> Issued:
        """Steps 2 and 3: sign once, then store (second transaction, Core statements). Runs outside any
        transaction, so the database's write lock is not held during the signature."""
        env, prepared = intent.environment, intent.prepared
        failpoint("issuance.after_intent")
        certificate = pki_issuer.sign_prepared(self.rt.environments[env].issuing, prepared)
        failpoint("issuance.after_sign")
        der = certificate.public_bytes(serialization.Encoding.DER)
        serial = format(prepared.serial, "x")
        good = self.status.presign(env, serial)  # outside the write lock
        with self.rt.db.transaction() as s:
            conn = s.connection()
            stored = conn.execute(
                _STORE_CERT,
                {"cert_id": intent.cert_id, "cert_der": der, "at": self.rt.clock.now()},
            )
            if stored.rowcount != 1:
                # the reconciler got there first (it assumed a crash): the certificate is revoked already
                raise DomainError(ErrorKind.CONFLICT, "the signing attempt was abandoned; try again")
            if conn.execute(_REQUEST_ISSUED, {"request_id": intent.request_id}).rowcount != 1:
                raise DomainError(
                    ErrorKind.INVALID_TRANSITION, f"request {intent.request_id} is no longer APPROVED"
                )
            self.status.insert_response(s, intent.cert_id, intent.issuer_id, serial, good)
            self.rt.audit.append(
                s,
                actor="system",
                action="certificate.issued",
                obj=f"{env}/serial/{serial}",
                request=intent.request_id,
                sha256=hashlib.sha256(der).hexdigest(),
                der=base64.b64encode(der).decode(),
            )
        self.status.remember(intent.issuer_id, serial, good.der)
        return Issued(intent.cert_id, certificate)

    def reconcile(self, *, older_than: timedelta = timedelta(0)) -> list[str]:
        """Resolve ``signing`` rows left by a crash: revoke them (superseded); their request stays
        APPROVED and is issued again with a new serial. Returns the request ids to re-issue."""
        cutoff = self.rt.clock.now() - older_than
        again: list[str] = []
        with self.rt.db.transaction() as s:
            rows = s.execute(
                select(Certificate).where(
                    Certificate.status == CertState.SIGNING, Certificate.created_at <= cutoff
                )
            ).scalars()
            for cert in rows:
                cert.status = transition_cert(cert.status, CertState.REVOKED)
                cert.revoked_at = self.rt.clock.now()
                cert.revocation_reason = "superseded"
                cert.revoked_by = "reconciler"
                self.status.sign_response(s, cert)
                self.rt.audit.append(
                    s,
                    actor="reconciler",
                    action="certificate.abandoned",
                    obj=f"{cert.environment}/serial/{cert.serial}",
                    request=cert.request_id,
                )
                if cert.request_id:
                    again.append(cert.request_id)
        reissue: list[str] = []
        for request_id in again:
            with self.rt.db.read() as s:
                req = s.get(CertificateRequest, request_id)
                if req is not None and req.status == RequestState.APPROVED:
                    reissue.append(request_id)
        for request_id in reissue:
            self.issue(request_id)
        self.status.load_responses()
        return reissue
