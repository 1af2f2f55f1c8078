"""EtkRA v2 use cases: StartETKRegistration, CompleteETKRegistration, ActivateETK (reference §4).

The holder proves possession of the new encryption key by decrypting the challenge
``RSAES-PKCS1-v1_5(key, S) || SHA-256(S)``: the certificate it then builds (``ToBeRegistered``, §4.4) must
carry ``int(S)`` as serial and be signed by the authentication key. Every request is signed with the eHealth
authentication key (``etkra/verify.py``). The service decides and commits once per use case; the depot cache
is cleared after the commit.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import and_, event, or_, select
from sqlalchemy.orm import Session

from ehealth_certs.clock import utc
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.etkra.depot import EtkDepot
from ehealth_certs.etkra.states import FINAL_STATES, EtkState, transition
from ehealth_certs.etkra.verify import AuthSignedRequest, b64, unb64, verify_auth_request
from ehealth_certs.identity.signed import record_request_id
from ehealth_certs.pki import etk as pki_etk
from ehealth_certs.pki.issuer import issue_etk
from ehealth_certs.pki.keys import check_public_key
from ehealth_certs.ra.service import CertRaService
from ehealth_certs.ra.states import CertState
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models import Certificate, CertificateRequest, EtkRecord

CHALLENGE_LIFETIME = timedelta(minutes=10)
ENCRYPTION_KEY_BITS = 2048  # res/ra.properties etk.key.size
_OPEN = (EtkState.IN_REQUEST, EtkState.WAIT_FOR_ACTIVATION, EtkState.VALID_ACTIVE)
# When several ETKs of one certificate exist, the status shown is that of the most relevant one.
_PRIORITY = [EtkState.VALID_ACTIVE, EtkState.WAIT_FOR_ACTIVATION, EtkState.IN_REQUEST, EtkState.REVOKED,
             EtkState.EXPIRED]  # fmt: skip


class EtkRaService:
    def __init__(self, rt: Runtime, certra: CertRaService, depot: EtkDepot) -> None:
        self.rt = rt
        self.depot = depot
        certra.on_revoked.append(self.on_certificate_revoked)
        certra.info_hooks.append(self._info_hook)

    # -- authentication ---------------------------------------------------------------------------
    def _verify(self, s: Session, environment: Environment, token: str, operation: str) -> AuthSignedRequest:
        """Verify in a read session, then record the request id in ``s`` (the use case's unit of work).

        Call it before ``s`` has touched the database: a refusal is audited in a transaction of its own,
        which must not wait behind ``s`` (SQLite takes the write lock at the first statement).
        """
        er = self.rt.environments[environment]
        now = self.rt.clock.now()
        max_age = timedelta(seconds=self.rt.settings.request_signature_max_age_seconds)
        try:
            with self.rt.db.read() as r:
                signed = verify_auth_request(
                    r,
                    token,
                    issuing_ca=er.issuing.certificate,
                    issuer_id=er.issuer_ids["issuing"],
                    environment=environment.value,
                    now=now,
                    max_age=max_age,
                )
        except DomainError as exc:
            self.rt.audit_auth_failure(f"{environment}/etkra/{operation}", exc)
            raise
        record_request_id(s, "etkra", signed.request_id, now=now, keep=max_age * 2 + timedelta(minutes=1))
        return signed

    @staticmethod
    def _actor(cert: x509.Certificate) -> str:
        return f"ehealth:{cert.subject.rfc4514_string()}"

    # -- StartETKRegistration ---------------------------------------------------------------------
    def start_registration(self, environment: Environment, token: str) -> dict[str, Any]:
        now = self.rt.clock.now()
        with self.rt.db.transaction() as s:
            signed = self._verify(s, environment, token, "start")
            spki = unb64(signed.body.get("publicEncryptionKey"), "publicEncryptionKey")
            try:
                public_key = serialization.load_der_public_key(spki)
            except (ValueError, TypeError) as exc:
                raise DomainError(
                    ErrorKind.BAD_REQUEST, "publicEncryptionKey is not a DER SubjectPublicKeyInfo"
                ) from exc
            if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != ENCRYPTION_KEY_BITS:
                raise DomainError(ErrorKind.WEAK_KEY, "the public encryption key must be RSA of 2048 bits")
            check_public_key(
                public_key,
                min_rsa_bits=ENCRYPTION_KEY_BITS,
                max_rsa_bits=ENCRYPTION_KEY_BITS,
                debian_weak_keys=self.rt.debian_weak_keys,
            )
            canonical = public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            auth_spki = signed.certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            if canonical == auth_spki:
                raise DomainError(
                    ErrorKind.BAD_REQUEST, "the encryption key must differ from the authentication key"
                )
            if s.execute(select(EtkRecord.id).where(EtkRecord.public_key_der == canonical)).first():
                raise DomainError(
                    ErrorKind.CONFLICT, "this encryption key was already registered; generate a new one"
                )
            cert = self._issued(s, signed.certificate_id)
            req = s.get(CertificateRequest, cert.request_id) if cert.request_id else None
            if req is None:
                raise DomainError(
                    ErrorKind.UNTRUSTED_SIGNER, "the signer's certificate has no request on record"
                )
            rows = self._rows_of(s, cert.id, lock=True)
            for row in rows:
                if row.status in (EtkState.WAIT_FOR_ACTIVATION, EtkState.VALID_ACTIVE) and now <= utc(
                    row.not_after
                ):
                    raise DomainError(
                        ErrorKind.CONFLICT,
                        f"this certificate already has an ETK ({row.status}); revoke or renew it",
                    )
            for row in rows:
                if row.status == EtkState.IN_REQUEST:  # a new challenge replaces an unanswered one
                    self._end(s, row, EtkState.REVOKED, "challenge replaced")
            challenge, secret = pki_etk.make_challenge(public_key)
            row = EtkRecord(
                environment=environment.value,
                certificate_id=cert.id,
                id_type=req.actor_type,
                id_value=req.actor_id,
                application_id=req.application_id,
                status=transition(EtkState.NOT_REQUESTED, EtkState.IN_REQUEST),
                public_key_der=canonical,
                challenge_sha256=hashlib.sha256(secret).hexdigest(),
                challenge_expires_at=now + CHALLENGE_LIFETIME,
                not_after=utc(cert.not_after),
                created_at=now,
            )
            s.add(row)
            s.flush()
            self.rt.audit.append(
                s, actor=self._actor(signed.certificate), action="etk.registration.started",
                obj=f"{environment}/etk/{row.id}", certificate_serial=cert.serial,
            )  # fmt: skip
        return {"challenge": b64(challenge), "expiresAt": (now + CHALLENGE_LIFETIME).isoformat()}

    # -- CompleteETKRegistration ------------------------------------------------------------------
    def complete_registration(self, environment: Environment, token: str) -> dict[str, Any]:
        now = self.rt.clock.now()
        er = self.rt.environments[environment]
        with self.rt.db.transaction() as s:
            signed = self._verify(s, environment, token, "complete")
            der = unb64(signed.body.get("toBeRegistered"), "toBeRegistered")
            try:
                tbr = x509.load_der_x509_certificate(der)
            except ValueError as exc:
                raise DomainError(
                    ErrorKind.BAD_REQUEST, "toBeRegistered is not a DER X.509 certificate"
                ) from exc
            pending = [
                r
                for r in self._rows_of(s, signed.certificate_id, lock=True)
                if r.status == EtkState.IN_REQUEST
            ]
            if not pending:
                raise DomainError(
                    ErrorKind.CHALLENGE_INVALID,
                    "no ETK registration is in progress for this certificate; start one",
                )
            row = pending[-1]
            if now > utc(row.challenge_expires_at):
                raise DomainError(
                    ErrorKind.CHALLENGE_INVALID,
                    f"the challenge expired at {utc(row.challenge_expires_at).isoformat()}; start a new registration",
                )
            serial = tbr.serial_number
            secret = (
                serial.to_bytes(pki_etk.SECRET_BYTES, "big")
                if 0 < serial < 2 ** (8 * pki_etk.SECRET_BYTES)
                else b""
            )
            if not hmac.compare_digest(hashlib.sha256(secret).hexdigest(), row.challenge_sha256):
                raise DomainError(
                    ErrorKind.CHALLENGE_INVALID, "ToBeRegistered: serial is not the challenge secret"
                )
            enc_key = serialization.load_der_public_key(row.public_key_der)
            assert isinstance(enc_key, rsa.RSAPublicKey)  # checked at the start
            pki_etk.check_to_be_registered(tbr, signed.certificate, serial, enc_key)

            cert = self._issued(s, signed.certificate_id)
            req = s.get(CertificateRequest, cert.request_id) if cert.request_id else None
            to_be_activated = False
            if req is not None and req.replaces_certificate_id is not None:
                to_be_activated = any(
                    r.status == EtkState.VALID_ACTIVE and now <= utc(r.not_after)
                    for r in self._rows_of(s, req.replaces_certificate_id, lock=True)
                )
            target = EtkState.WAIT_FOR_ACTIVATION if to_be_activated else EtkState.VALID_ACTIVE
            etk_der = issue_etk(
                er.pki.etkra.signer, er.pki.etkra.certificate, tbr, signed.certificate,
                [er.pki.issuing.certificate, er.pki.root.certificate],
            )  # fmt: skip
            row.status = transition(row.status, target)
            row.serial, row.der, row.registered_at = str(serial), etk_der, now
            if target is EtkState.VALID_ACTIVE:
                row.activated_at = now
                self._supersede_others(s, row)
            self.rt.audit.append(
                s, actor=self._actor(signed.certificate), action="etk.registered", obj=f"{environment}/etk/{row.id}",
                serial=str(serial), status=target.value,
            )  # fmt: skip
        self.depot.invalidate()
        return {"etk": b64(etk_der), "toBeActivated": to_be_activated, "serial": str(serial)}

    # -- ActivateETK ------------------------------------------------------------------------------
    def activate(self, environment: Environment, token: str) -> dict[str, Any]:
        now = self.rt.clock.now()
        with self.rt.db.transaction() as s:
            signed = self._verify(s, environment, token, "activate")
            self._issued(s, signed.certificate_id)
            waiting = [
                r for r in self._rows_of(s, signed.certificate_id, lock=True)
                if r.status == EtkState.WAIT_FOR_ACTIVATION
            ]  # fmt: skip
            if not waiting:
                raise DomainError(
                    ErrorKind.INVALID_TRANSITION, "no ETK of this certificate waits for activation"
                )
            row = waiting[-1]
            row.status = transition(row.status, EtkState.VALID_ACTIVE)
            row.activated_at = now
            self._supersede_others(s, row)
            self.rt.audit.append(
                s, actor=self._actor(signed.certificate), action="etk.activated", obj=f"{environment}/etk/{row.id}",
                serial=row.serial,
            )  # fmt: skip
            serial = row.serial
        self.depot.invalidate()
        return {"status": EtkState.VALID_ACTIVE.value, "serial": serial}

    # -- lifecycle --------------------------------------------------------------------------------
    def on_certificate_revoked(self, s: Session, cert: Certificate) -> None:
        """CertRA hook, inside the revoking transaction: the certificate's ETKs are revoked with it."""
        ended = 0
        for row in self._rows_of(s, cert.id, lock=True):
            if row.status not in FINAL_STATES:
                self._end(s, row, EtkState.REVOKED, "authentication certificate revoked")
                ended += 1
        if ended:
            self.depot.invalidate()
            # A lookup between this clear and the commit could cache the old answer: clear again after it.
            event.listen(s, "after_commit", lambda _s: self.depot.invalidate(), once=True)

    def expire(self) -> int:
        """Maintenance: ETKs of expired certificates become EXPIRED, lapsed challenges too."""
        now = self.rt.clock.now()
        with self.rt.db.transaction() as s:
            rows = (
                s.execute(
                    select(EtkRecord)
                    .where(
                        EtkRecord.status.in_([st.value for st in _OPEN]),
                        or_(
                            EtkRecord.not_after < now,
                            and_(
                                EtkRecord.status == EtkState.IN_REQUEST, EtkRecord.challenge_expires_at < now
                            ),
                        ),
                    )
                    .with_for_update()
                )
                .scalars()
                .all()
            )
            ended = 0
            for row in rows:
                if now > utc(row.not_after):
                    self._end(s, row, EtkState.EXPIRED, "authentication certificate expired")
                    ended += 1
                elif row.status == EtkState.IN_REQUEST and now > utc(row.challenge_expires_at):
                    self._end(s, row, EtkState.EXPIRED, "challenge expired")
                    ended += 1
        if ended:
            self.depot.invalidate()
        return ended

    def _end(self, s: Session, row: EtkRecord, target: EtkState, reason: str) -> None:
        row.status = transition(row.status, target)
        row.ended_at, row.end_reason = self.rt.clock.now(), reason
        self.rt.audit.append(
            s, actor="system", action=f"etk.{target.value.lower()}", obj=f"{row.environment}/etk/{row.id}",
            serial=row.serial, reason=reason,
        )  # fmt: skip

    def _supersede_others(self, s: Session, row: EtkRecord) -> None:
        """Only one ETK per identifier (and ApplicationID) is served: the newly active one."""
        others = (
            s.execute(
                select(EtkRecord)
                .where(
                    EtkRecord.environment == row.environment,
                    EtkRecord.id_type == row.id_type,
                    EtkRecord.id_value == row.id_value,
                    EtkRecord.status == EtkState.VALID_ACTIVE,
                    EtkRecord.id != row.id,
                )
                .with_for_update()
            )
            .scalars()
            .all()
        )
        for other in others:
            if other.application_id == row.application_id:
                self._end(s, other, EtkState.REVOKED, "superseded")

    @staticmethod
    def _issued(s: Session, certificate_id: int) -> Certificate:
        """The signer's certificate, re-read (and locked) in the use case's transaction: a revocation that
        committed after the verification is seen here."""
        cert = s.execute(
            select(Certificate).where(Certificate.id == certificate_id).with_for_update()
        ).scalar_one()
        if cert.status != CertState.ISSUED:
            raise DomainError(ErrorKind.FORBIDDEN, "the eHealth authentication certificate is revoked")
        return cert

    @staticmethod
    def _rows_of(s: Session, certificate_id: int, *, lock: bool = False) -> list[EtkRecord]:
        q = select(EtkRecord).where(EtkRecord.certificate_id == certificate_id).order_by(EtkRecord.id)
        if lock:
            q = q.with_for_update()
        return list(s.execute(q).scalars())

    # -- status -----------------------------------------------------------------------------------
    def effective_state(self, row: EtkRecord, now: datetime) -> EtkState:
        """The state as of ``now``: expiry is computed at read time, before maintenance records it."""
        state = EtkState(row.status)
        if state in FINAL_STATES:
            return state
        if now > utc(row.not_after):
            return EtkState.EXPIRED
        if state is EtkState.IN_REQUEST and now > utc(row.challenge_expires_at):
            return EtkState.NOT_REQUESTED  # the challenge lapsed: nothing was registered
        return state

    def status_of(self, s: Session, certificate_id: int) -> tuple[EtkState, str | None]:
        """(ETK status, decimal serial) of a certificate, for CertificateInfo and ``cert status``."""
        now = self.rt.clock.now()
        best: tuple[int, EtkState, str | None] | None = None
        for row in self._rows_of(s, certificate_id):
            state = self.effective_state(row, now)
            if state is EtkState.NOT_REQUESTED:
                continue
            rank = _PRIORITY.index(state)
            if best is None or rank <= best[0]:
                best = (rank, state, row.serial)
        return (EtkState.NOT_REQUESTED, None) if best is None else (best[1], best[2])

    def _info_hook(
        self, s: Session, req: CertificateRequest, cert: Certificate | None, info: dict[str, Any]
    ) -> None:
        if cert is None:
            return
        state, serial = self.status_of(s, cert.id)
        info["etkStatus"] = state.value
        if serial is not None:
            info["etkSerialNumber"] = serial
