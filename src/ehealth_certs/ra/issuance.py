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
class Issued:
    certificate_id: int
    certificate: x509.Certificate


class IssuanceService:
    def __init__(self, rt: Runtime, status: StatusService) -> None:
        self.rt = rt
        self.status = status
        self.on_issued: list[Callable[[Session, Certificate], None]] = []

    def _record_intent(self, s: Session, req: CertificateRequest) -> tuple[int, pki_issuer.PreparedCertificate]:
        env = Environment(req.environment)
        er = self.rt.environments[env]
        csr = x509.load_der_x509_csr(req.csr_der)
        public_key = csr.public_key()
        profile = leaf_profile(env)
        now = self.rt.clock.now()
        not_before, not_after = validity_window(profile, now, er.issuing.certificate.not_valid_after_utc)
        crl_url, ocsp_url, ca_issuers_url = leaf_urls(env, self.rt.settings.base_url)
        serial = pki_issuer.random_serial()
        prepared = pki_issuer.prepare_leaf(
            ca=er.issuing,
            profile=profile,
            # the subject comes from RA-verified data, never from the CSR
            subject=build_subject(EHealthName(req.actor_type, req.actor_id, req.holder_name, req.application_id)),
            public_key=public_key,  # type: ignore[arg-type]
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            crl_url=crl_url,
            ocsp_url=ocsp_url,
            ca_issuers_url=ca_issuers_url,
        )
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

    def issue(self, request_id: str, *, session: Session | None = None) -> Issued:
        """Issue the certificate of an APPROVED request.

        With ``session``, the intent is recorded in the caller's open transaction, which is committed here,
        before signing (one fsync for request and intent together).
        """
        try:
            if session is not None:
                req = session.get(CertificateRequest, request_id)
                if req is None:
                    raise DomainError(ErrorKind.NOT_FOUND, f"no request {request_id}")
                cert_id, prepared = self._record_intent(session, req)
                session.commit()
            else:
                with self.rt.db.transaction() as s:
                    req = s.get(CertificateRequest, request_id)
                    if req is None:
                        raise DomainError(ErrorKind.NOT_FOUND, f"no request {request_id}")
                    if req.status != RequestState.APPROVED:
                        raise DomainError(
                            ErrorKind.INVALID_TRANSITION, f"request {request_id} is {req.status}, not APPROVED"
                        )
                    cert_id, prepared = self._record_intent(s, req)
        except IntegrityError as exc:  # 159 random bits: a collision means something is badly wrong
            raise DomainError(ErrorKind.INTERNAL, "serial number collision; nothing was signed") from exc
        failpoint("issuance.after_intent")
        env = Environment(req.environment)
        er = self.rt.environments[env]
        certificate = pki_issuer.sign_prepared(er.issuing, prepared)
        failpoint("issuance.after_sign")
        der = certificate.public_bytes(serialization.Encoding.DER)
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
            ocsp = self.status.sign_response(s, cert)
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
                select(Certificate).where(Certificate.status == CertState.SIGNING, Certificate.created_at <= cutoff)
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
