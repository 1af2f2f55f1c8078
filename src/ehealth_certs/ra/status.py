"""Certificate status: pre-signed OCSP responses and CRLs per issuing CA.

OCSP answers come from memory: every issued or revoked certificate has a response signed in advance by the
delegated responder and stored in ``ocsp_responses``; this process keeps them in a dict and reloads rows that
other processes (the operator CLI) changed. A serial that was never issued is never "good": it gets a live
"unknown". CRLs are rebuilt when a revocation is newer than the newest CRL, or well before nextUpdate.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from ehealth_certs.clock import utc
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError
from ehealth_certs.pki import issuer as pki_issuer
from ehealth_certs.pki import ocsp as pki_ocsp
from ehealth_certs.ra.states import CertState
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models import Certificate, Crl, OcspResponse, table_of

log = logging.getLogger(__name__)

_INSERT_RESPONSE = insert(table_of(OcspResponse))

REASONS: dict[str, x509.ReasonFlags] = {
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
}


@dataclass(frozen=True)
class Presigned:
    der: bytes
    this_update: datetime
    next_update: datetime


@dataclass(frozen=True)
class _IssuerKey:
    environment: Environment
    issuer_id: int


class StatusService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._lock = threading.Lock()
        self._responses: dict[tuple[int, int], bytes] = {}  # (issuer_id, serial) -> DER OCSPResponse
        self._issuers: dict[tuple[str, bytes, bytes], _IssuerKey] = {}  # (hash alg, name hash, key hash)
        self._high_water: datetime | None = None
        self.responses_served = 0
        for env, er in rt.environments.items():
            for alg in ("sha1", "sha256"):
                name_hash, key_hash = pki_ocsp.issuer_hashes(er.issuing.certificate, alg)
                self._issuers[(alg, name_hash, key_hash)] = _IssuerKey(env, er.issuer_ids["issuing"])

    # -- OCSP -------------------------------------------------------------------------------------
    def presign(
        self,
        environment: Environment,
        serial_hex: str,
        *,
        revoked_at: datetime | None = None,
        reason: str | None = None,
    ) -> Presigned:
        """Sign a response without touching the database ("good", or "revoked" when ``revoked_at``)."""
        er = self.rt.environments[environment]
        now = self.rt.clock.now()
        next_update = now + timedelta(hours=self.rt.settings.ocsp_validity_hours)
        der = pki_issuer.sign_ocsp_response(
            er.pki.ocsp,
            issuer_certificate=er.issuing.certificate,
            serial=int(serial_hex, 16),
            status="revoked" if revoked_at is not None else "good",
            revoked_at=revoked_at,
            reason=REASONS.get(reason or "") if revoked_at is not None else None,
            this_update=now,
            next_update=next_update,
        )
        return Presigned(der, now, next_update)

    def store_response(self, session: Session, cert: Certificate, signed: Presigned) -> OcspResponse:
        row = session.get(OcspResponse, cert.id)
        if row is None:
            row = OcspResponse(certificate_id=cert.id, issuer_id=cert.issuer_id, serial=cert.serial)
            session.add(row)
        row.der, row.this_update, row.next_update = signed.der, signed.this_update, signed.next_update
        return row

    def insert_response(
        self, session: Session, certificate_id: int, issuer_id: int, serial_hex: str, signed: Presigned
    ) -> None:
        """Store the first response of a certificate just issued (Core insert: the issuance hot path)."""
        session.connection().execute(
            _INSERT_RESPONSE,
            {
                "certificate_id": certificate_id,
                "issuer_id": issuer_id,
                "serial": serial_hex,
                "der": signed.der,
                "this_update": signed.this_update,
                "next_update": signed.next_update,
            },
        )

    def sign_response(self, session: Session, cert: Certificate) -> OcspResponse:
        """(Re-)sign the response for one certificate row and store it; call inside the caller's transaction."""
        revoked = cert.status == CertState.REVOKED
        signed = self.presign(
            Environment(cert.environment),
            cert.serial,
            revoked_at=(cert.revoked_at or self.rt.clock.now()) if revoked else None,
            reason=cert.revocation_reason if revoked else None,
        )
        return self.store_response(session, cert, signed)

    def remember(self, issuer_id: int, serial_hex: str, der: bytes) -> None:
        """Make a committed response visible to this process at once."""
        with self._lock:
            self._responses[(issuer_id, int(serial_hex, 16))] = der

    def answer(self, request_der: bytes) -> bytes:
        """The whole OCSP responder: never raises, always returns a DER OCSPResponse."""
        try:
            query = pki_ocsp.parse_ocsp_request(request_der)
        except DomainError:
            return pki_ocsp.error_response("malformedRequest")
        key = self._issuers.get((query.hash_algorithm, query.issuer_name_hash, query.issuer_key_hash))
        if key is None:
            return pki_ocsp.error_response("unauthorized")
        self.responses_served += 1
        if query.hash_algorithm == "sha1":
            cached = self._responses.get((key.issuer_id, query.serial))
            if cached is not None:
                return cached
        try:
            return self._answer_slow(key, query)
        except Exception:  # the responder must answer; the cause goes to the log
            log.exception("OCSP: internal error")
            return pki_ocsp.error_response("internalError")

    def _answer_slow(self, key: _IssuerKey, query: pki_ocsp.OcspQuery) -> bytes:
        er = self.rt.environments[key.environment]
        serial_hex = format(query.serial, "x")
        with self.rt.db.read() as s:
            cert = s.execute(
                select(Certificate).where(
                    Certificate.issuer_id == key.issuer_id, Certificate.serial == serial_hex
                )
            ).scalar_one_or_none()
            stored = s.get(OcspResponse, cert.id) if cert is not None else None
        now = self.rt.clock.now()
        if stored is not None and query.hash_algorithm == "sha1" and stored.next_update > now:
            self.remember(key.issuer_id, serial_hex, stored.der)
            return stored.der
        if cert is None or cert.status == CertState.SIGNING:
            status, revoked_at, reason = "unknown", None, None  # never "good" for an unissued serial
        elif cert.status == CertState.REVOKED:
            status, revoked_at, reason = "revoked", cert.revoked_at, REASONS.get(cert.revocation_reason or "")
        else:
            status, revoked_at, reason = "good", None, None
        return pki_issuer.sign_ocsp_response(
            er.pki.ocsp,
            issuer_certificate=er.issuing.certificate,
            serial=query.serial,
            status=status,
            revoked_at=revoked_at,
            reason=reason,
            this_update=now,
            next_update=now + timedelta(hours=self.rt.settings.ocsp_validity_hours),
            hash_algorithm=query.hash_algorithm,
        )

    def load_responses(self) -> int:
        """Load (or reload) stored responses changed since the last call; returns how many."""
        since = self._high_water - timedelta(minutes=5) if self._high_water else None
        with self.rt.db.read() as s:
            q = select(
                OcspResponse.issuer_id, OcspResponse.serial, OcspResponse.der, OcspResponse.this_update
            )
            if since is not None:
                q = q.where(OcspResponse.this_update >= since)
            rows = s.execute(q).all()
        newest = self._high_water
        with self._lock:
            for issuer_id, serial, der, this_update in rows:
                self._responses[(issuer_id, int(serial, 16))] = der
                if newest is None or this_update > newest:
                    newest = this_update
        self._high_water = newest
        return len(rows)

    def refresh_expiring(self, *, batch: int = 500) -> int:
        """Re-sign responses past half of their validity (RFC 5019 / BR refresh rule)."""
        now = self.rt.clock.now()
        half = timedelta(hours=self.rt.settings.ocsp_validity_hours / 2)
        done = 0
        with self.rt.db.transaction() as s:
            rows = s.execute(
                select(Certificate)
                .join(OcspResponse, OcspResponse.certificate_id == Certificate.id)
                .where(OcspResponse.next_update <= now + half)
                .limit(batch)
            ).scalars()
            fresh = [(c.issuer_id, c.serial, self.sign_response(s, c).der) for c in rows]
            done = len(fresh)
        for issuer_id, serial, der in fresh:
            self.remember(issuer_id, serial, der)
        return done

    # -- CRL --------------------------------------------------------------------------------------
    def latest_crl(self, environment: Environment, role: str = "issuing") -> Crl | None:
        """The newest CRL of the issuing CA (end entities) or of the root (``role="root"``: CA certificates)."""
        issuer_id = self.rt.environments[environment].issuer_ids[role]
        with self.rt.db.read() as s:
            return s.execute(
                select(Crl).where(Crl.issuer_id == issuer_id).order_by(Crl.number.desc()).limit(1)
            ).scalar_one_or_none()

    def crl_due(self, environment: Environment, role: str = "issuing") -> bool:
        last = self.latest_crl(environment, role)
        if last is None:
            return True
        now = self.rt.clock.now()
        # republish once a day (well before the 7-day nextUpdate) and after any newer revocation
        if now - last.this_update >= timedelta(hours=24) or last.next_update - now <= timedelta(hours=24):
            return True
        issuer_id = self.rt.environments[environment].issuer_ids[role]
        with self.rt.db.read() as s:
            newest = s.execute(
                select(func.max(Certificate.revoked_at)).where(Certificate.issuer_id == issuer_id)
            ).scalar()
        return newest is not None and utc(newest) >= last.this_update

    def publish_crl(self, environment: Environment, role: str = "issuing") -> Crl:
        er = self.rt.environments[environment]
        issuer_id = er.issuer_ids[role]
        ca = er.pki.issuing if role == "issuing" else er.pki.root
        now = self.rt.clock.now()
        with self.rt.db.read() as s:
            revoked = s.execute(
                select(Certificate.serial, Certificate.revoked_at, Certificate.revocation_reason).where(
                    Certificate.issuer_id == issuer_id, Certificate.status == CertState.REVOKED
                )
            ).all()
        # whole seconds, as the CRL encodes them: thisUpdate is truncated too, so a revocation earlier in the
        # same second as the CRL must not look later than it (the pre-sign gate would refuse the CRL)
        entries = [
            pki_issuer.RevokedEntry(
                int(serial, 16), utc(at or now).replace(microsecond=0), REASONS.get(reason or "")
            )
            for serial, at, reason in revoked
        ]
        next_update = now + timedelta(hours=self.rt.settings.crl_validity_hours)
        with self.rt.db.transaction() as s:
            last = s.execute(select(func.max(Crl.number)).where(Crl.issuer_id == issuer_id)).scalar()
            # never backwards, also after a restore: the floor is the microsecond clock
            number = max((last or 0) + 1, int(now.timestamp() * 1_000_000))
            der = pki_issuer.sign_crl(
                ca, number=number, this_update=now, next_update=next_update, entries=entries
            )
            crl = Crl(issuer_id=issuer_id, number=number, this_update=now, next_update=next_update, der=der)
            s.add(crl)
            self.rt.audit.append(
                s,
                actor="system",
                action="crl.published",
                obj=f"{environment}/{role}/crl/{number}",
                entries=len(entries),
            )
        return crl

    def refresh(self) -> None:
        """One round of the background maintenance: reload, re-sign, republish what is due."""
        self.load_responses()
        self.refresh_expiring()
        for env in self.rt.environments:
            for role in ("issuing", "root"):
                if self.crl_due(env, role):
                    self.publish_crl(env, role)
