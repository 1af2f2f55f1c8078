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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import issuer as pki_issuer
from ehealth_certs.pki.ceremony import leaf_urls
from ehealth_certs.pki.keys import public_key_identifier, spki_sha256
from ehealth_certs.pki.names import EHealthName, build_subject
from ehealth_certs.pki.profiles import leaf_profile, validity_window
from ehealth_certs.ra.states import CertState, RequestState, transition_cert, transition_request
from ehealth_certs.ra.status import StatusService
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models import Certificate, CertificateRequest

log = logging.getLogger(__name__)


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
    prepared: pki_issuer.PreparedCertificate


@dataclass(frozen=True)
class Issued:
    certificate_id: int
    certificate: x509.Certificate


class IssuanceService:
    def __init__(self, rt: Runtime, status: StatusService) -> None:
        self.rt = rt
        self.status = status
        self.on_issued: list[Callable[[Session, Certificate], None]] = []

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

    def _record_intent(
        self, s: Session, req: CertificateRequest, prepared: pki_issuer.PreparedCertificate | None
    ) -> tuple[int, pki_issuer.PreparedCertificate]:
        env = Environment(req.environment)
        er = self.rt.environments[env]
        public_key = x509.load_der_x509_csr(req.csr_der).public_key()
        if prepared is None:
            holder = EHealthName(req.actor_type, req.actor_id, req.holder_name, req.application_id)
            prepared = self.prepare(env, holder, public_key)
        now = self.rt.clock.now()
        serial = prepared.serial
        cert = Certificate(
            issuer_id=er.issuer_ids["issuing"],
            serial=format(serial, "x"),
            request_id=req.id,
            environment=env.value,
            status=CertState.SIGNING,
            subject_dn=req.subject_dn,
            public_key_identifier=public_key_identifier(public_key).hex(),  # type: ignore[arg-type]
            spki_sha256=spki_sha256(public_key),  # type: ignore[arg-type]
            not_before=prepared.not_before,
            not_after=prepared.not_after,
            tbs_sha256=hashlib.sha256(prepared.tbs_der).hexdigest(),
            created_at=now,
        )
        s.add(cert)
        s.flush()  # UNIQUE(issuer_id, serial) is checked here
        self.rt.audit.append(
            s,
            actor="system",
            action="certificate.signing",
            obj=f"{env}/serial/{cert.serial}",
            request=req.id,
            tbs_sha256=cert.tbs_sha256,
        )
        return cert.id, prepared

    def record_intent(
        self, session: Session, request_id: str, prepared: pki_issuer.PreparedCertificate | None = None
    ) -> Intent:
        """Step 1 inside the caller's transaction (request and intent then commit together, one fsync).
        The caller must call ``complete`` after its commit, outside the transaction."""
        req = session.get(CertificateRequest, request_id)
        if req is None:
            raise DomainError(ErrorKind.NOT_FOUND, f"no request {request_id}")
        if req.status != RequestState.APPROVED:
            raise DomainError(
                ErrorKind.INVALID_TRANSITION, f"request {request_id} is {req.status}, not APPROVED"
            )
        try:
            cert_id, prepared = self._record_intent(session, req, prepared)
        except IntegrityError as exc:  # 159 random bits: a collision means something is badly wrong
            raise DomainError(ErrorKind.INTERNAL, "serial number collision; nothing was signed") from exc
        return Intent(request_id, Environment(req.environment), cert_id, prepared)

    def issue(self, request_id: str) -> Issued:
        """Issue the certificate of an APPROVED request: intent (own transaction), then ``complete``."""
        with self.rt.db.transaction() as s:
            intent = self.record_intent(s, request_id)
        return self.complete(intent)

    def complete(self, intent: Intent) -> Issued:
        """Steps 2 and 3: sign once, then store (second transaction). Runs outside any transaction, so the
        database's write lock is not held during the signature."""
        request_id, env, cert_id, prepared = (
            intent.request_id,
            intent.environment,
            intent.cert_id,
            intent.prepared,
        )
        failpoint("issuance.after_intent")
        er = self.rt.environments[env]
        certificate = pki_issuer.sign_prepared(er.issuing, prepared)
        failpoint("issuance.after_sign")
        der = certificate.public_bytes(serialization.Encoding.DER)
        good = self.status.presign(env, format(prepared.serial, "x"))  # outside the write lock
        with self.rt.db.transaction() as s:
            cert = s.get(Certificate, cert_id)
            assert cert is not None
            req2 = s.get(CertificateRequest, request_id)
            assert req2 is not None
            if cert.status != CertState.SIGNING:
                # the reconciler got there first (it assumed a crash): the certificate is revoked already
                raise DomainError(ErrorKind.CONFLICT, "the signing attempt was abandoned; try again")
            cert.status = transition_cert(cert.status, CertState.ISSUED)
            cert.der = der
            cert.issued_at = self.rt.clock.now()
            req2.status = transition_request(req2.status, RequestState.ISSUED)
            ocsp = self.status.store_response(s, cert, good)
            self.rt.audit.append(
                s,
                actor="system",
                action="certificate.issued",
                obj=f"{env}/serial/{cert.serial}",
                request=request_id,
                sha256=hashlib.sha256(der).hexdigest(),
                der=base64.b64encode(der).decode(),
            )
            for hook in self.on_issued:
                hook(s, cert)
            ocsp_der, serial, issuer_id = ocsp.der, cert.serial, cert.issuer_id
        self.status.remember(issuer_id, serial, ocsp_der)
        return Issued(cert_id, certificate)

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
