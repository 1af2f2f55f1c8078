"""CertRA v2 use cases: the same service answers the REST API and the command line.

Every signed operation arrives as a JWS token made with the holder's eID (see ``identity/eid.py``); the
service verifies it, refuses a request id it has seen before, then decides and commits once.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ehealth_certs.clock import utc
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identifiers import IDENTIFIER_TYPES, validate_identifier, validate_ssin
from ehealth_certs.identity.eid import EidVerifier, SignedRequest
from ehealth_certs.identity.signed import record_request_id
from ehealth_certs.identity.trust import EidTrust
from ehealth_certs.pki.csr import parse_csr
from ehealth_certs.pki.keys import check_public_key, public_key_identifier, spki_sha256
from ehealth_certs.pki.names import (
    EHealthName,
    build_subject,
    names_equal,
    person_name,
    validate_application_id,
)
from ehealth_certs.ra import contracts
from ehealth_certs.ra.issuance import IssuanceService
from ehealth_certs.ra.states import (
    CertificateStatus,
    CertState,
    RequestState,
    transition_cert,
    transition_request,
)
from ehealth_certs.ra.status import REASONS, StatusService
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.db import serialise_on
from ehealth_certs.storage.models import (
    BlockedKey,
    Certificate,
    CertificateRequest,
    Mandate,
    Organisation,
    Professional,
    Project,
    UsedRequestId,
    table_of,
)

REPLACEMENT_PERIOD = timedelta(days=90)

# The GenerateCertificate write transaction, in Core statements (it holds SQLite's write lock).
_REQUESTS = table_of(CertificateRequest)
_CERTS = table_of(Certificate)
_BLOCKED_KEY = select(table_of(BlockedKey).c.spki_sha256).where(
    table_of(BlockedKey).c.spki_sha256 == bindparam("spki")
)
_KEY_USED = select(_REQUESTS.c.id).where(_REQUESTS.c.public_key_identifier == bindparam("pki"))
_DN_IN_PROGRESS = select(_REQUESTS.c.id).where(
    _REQUESTS.c.environment == bindparam("env"),
    _REQUESTS.c.subject_dn == bindparam("dn"),
    _REQUESTS.c.status.in_([RequestState.PENDING_APPROVAL, RequestState.APPROVED]),
)
_ACTIVE_FOR_DN = select(_CERTS.c.id, _CERTS.c.not_after, _CERTS.c.public_key_identifier).where(
    _CERTS.c.environment == bindparam("env"),
    _CERTS.c.subject_dn == bindparam("dn"),
    _CERTS.c.status == CertState.ISSUED,
    _CERTS.c.not_after >= bindparam("now"),
)
_INSERT_REQUEST = insert(_REQUESTS)
# Authentic-source reads of GenerateContract / GenerateCertificate, built once (no expression building and
# cache-key computing per request).
_ORGANISATION_NAME = select(Organisation.name).where(
    Organisation.id_type == bindparam("id_type"), Organisation.number == bindparam("number")
)
_MANDATE = (
    select(Mandate.id)
    .join(Organisation, Organisation.id == Mandate.organisation_id)
    .where(
        Mandate.ssin == bindparam("ssin"),
        Organisation.id_type == bindparam("id_type"),
        Organisation.number == bindparam("number"),
    )
)
_PROJECT = select(Project.id, Project.ssins).where(Project.name == bindparam("name"))
_QUALITIES = select(Professional.quality).where(Professional.ssin == bindparam("ssin"))
CARE_QUALITIES = frozenset(
    {
        "doctor", "nurse", "pharmacist", "dentist", "midwife", "physiotherapist", "psychologist",
        "logopedist", "dietician", "occupational_therapist", "podologist", "orthoptist", "audiologist",
        "bandagist", "orthopedist", "optician", "clinical_psychologist", "paramedic", "caregiver",
        "lab_technologist", "imaging_technologist", "pharmacist_assistant",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Actor:
    id_type: str
    id_value: str
    application_id: str | None

    @property
    def is_person(self) -> bool:
        return self.id_type == "SSIN"


def _pki_hex(value: str) -> str:
    v = value.strip().lower()
    if len(v) != 40 or any(c not in "0123456789abcdef" for c in v):
        raise DomainError(
            ErrorKind.BAD_REQUEST, "PublicKeyIdentifier must be 20 bytes in hex (40 characters)"
        )
    return v


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DomainError(ErrorKind.BAD_REQUEST, f"field {key!r} is missing or not a string")
    return value.strip()


def _dict(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise DomainError(ErrorKind.BAD_REQUEST, f"field {key!r} is missing or not an object")
    return value


def parse_actor(raw: dict[str, Any]) -> Actor:
    id_type = _str(raw, "type").upper()
    if id_type not in IDENTIFIER_TYPES:
        raise DomainError(ErrorKind.BAD_IDENTIFIER, f"unknown identifier type {id_type!r}")
    value = validate_identifier(id_type, _str(raw, "value"))
    app = raw.get("applicationId")
    if app is not None and not isinstance(app, str):
        raise DomainError(ErrorKind.BAD_REQUEST, "applicationId must be a string")
    application_id = validate_application_id(app) if app else None
    if id_type == "SSIN" and application_id:
        raise DomainError(ErrorKind.BAD_REQUEST, "an ApplicationId is for organisations only")
    return Actor(id_type, value, application_id)


def _contract(environment: Environment, dn: str, signer: dict[str, str], actor: Actor) -> dict[str, Any]:
    """The certificate contract for ``actor`` (GenerateContract builds it; GenerateCertificate rebuilds it
    to check that the client sent it back unchanged)."""
    identifier = {"type": actor.id_type, "value": actor.id_value, "applicationId": actor.application_id}
    return contracts.certificate_contract(
        environment=environment.value, dn=dn, signer=signer, identifier=identifier
    )


def _contact(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise DomainError(ErrorKind.BAD_REQUEST, "contactData is missing")
    out: dict[str, str] = {}
    for key in ("emailPrivate", "phonePrivate", "emailGeneral", "phoneGeneral"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 200:
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"contactData.{key} must be a string of at most 200 characters"
            )
        out[key] = value.strip()
    if "@" not in out.get("emailPrivate", ""):
        raise DomainError(ErrorKind.BAD_REQUEST, "contactData.emailPrivate must be an e-mail address")
    return out


def _mandated_organisations(s: Session, ssin: str) -> list[Organisation]:
    """The organisations a person holds a mandate for (authentic source)."""
    return list(
        s.execute(
            select(Organisation)
            .join(Mandate, Mandate.organisation_id == Organisation.id)
            .where(Mandate.ssin == ssin)
        ).scalars()
    )


def _latest_certificate(s: Session, request_id: str) -> Certificate | None:
    """The newest certificate of a request that left ``signing`` (issued or revoked), if any."""
    query = (
        select(Certificate)
        .where(Certificate.request_id == request_id, Certificate.status != CertState.SIGNING)
        .order_by(Certificate.id.desc())
    )
    return s.execute(query).scalars().first()


def _has_mandate(s: Session, ssin: str, id_type: str, number: str) -> bool:
    found = s.connection().execute(_MANDATE, {"ssin": ssin, "id_type": id_type, "number": number})
    return found.first() is not None


class CertRaService:
    def __init__(
        self, rt: Runtime, status: StatusService, issuance: IssuanceService, trust: EidTrust
    ) -> None:
        self.rt = rt
        self.status = status
        self.issuance = issuance
        self.trust = trust
        self.on_revoked: list[Callable[[Session, Certificate], None]] = []
        # extensions (the ETK issue) add fields to CertificateInfo
        self.info_hooks: list[
            Callable[[Session, CertificateRequest, Certificate | None, dict[str, Any]], None]
        ] = []

    # -- signed requests ----------------------------------------------------------------------------
    def _authenticate(self, token: str, role: str) -> SignedRequest:
        """Verify an eID-signed request (no database work, except auditing a refusal on its own)."""
        try:
            cas = self.trust.citizen_cas()
            if not cas:
                raise DomainError(ErrorKind.UNTRUSTED_SIGNER, "this platform trusts no Citizen CA yet")
            return EidVerifier(cas).verify(
                token,
                now=self.rt.clock.now(),
                role=role,
                max_age=timedelta(seconds=self.rt.settings.request_signature_max_age_seconds),
            )
        except DomainError as exc:
            self.rt.audit_auth_failure(f"eid/{role}", exc)
            raise

    def _consume(self, s: Session, signed: SignedRequest) -> None:
        """Record the signed request's id: a request is accepted once."""
        record_request_id(s, "certra", signed.request_id, now=self.rt.clock.now(), keep=timedelta(hours=1))

    def _verify(self, s: Session, token: str, role: str) -> SignedRequest:
        """Authenticate, then record the request id in ``s`` (call before ``s`` has touched the database)."""
        signed = self._authenticate(token, role)
        self._consume(s, signed)
        return signed

    def forget_used_request_ids(self) -> int:
        """Maintenance: drop request ids older than the signature age limit allows to come back."""
        with self.rt.db.transaction() as s:
            result = s.execute(delete(UsedRequestId).where(UsedRequestId.expires_at < self.rt.clock.now()))
            return int(getattr(result, "rowcount", 0) or 0)

    def _verified(self, token: str, role: str) -> SignedRequest:
        """Verify and record the request id in a transaction of its own (read-only operations)."""
        with self.rt.db.transaction() as s:
            return self._verify(s, token, role)

    # -- GetActorQualities --------------------------------------------------------------------------
    def actor_qualities(self, environment: Environment, token: str) -> dict[str, Any]:
        signed = self._verified(token, "authentication")
        ssin = validate_ssin(_str(signed.body, "ssin"))
        if ssin != signed.identity.ssin:
            raise DomainError(ErrorKind.NOT_ENTITLED, "the eID holder may only ask for their own qualities")
        with self.rt.db.read() as s:
            quals = s.execute(select(Professional).where(Professional.ssin == ssin)).scalars().all()
            orgs = _mandated_organisations(s, ssin)
        return {
            "naturalPersonAuthorization": any(q.quality in CARE_QUALITIES for q in quals),
            "qualities": [{"quality": q.quality, "nihii": q.nihii} for q in quals],
            "organizationAuthorization": [
                {"name": o.name, "identifier": {"type": o.id_type, "value": o.number}} for o in orgs
            ],
        }

    # -- GenerateContract ---------------------------------------------------------------------------
    def _subject_for(self, s: Session, actor: Actor, signer: dict[str, str]) -> EHealthName:
        if actor.is_person:
            if actor.id_value != signer["ssin"]:
                raise DomainError(
                    ErrorKind.NOT_ENTITLED, "a person certificate can only be requested by that person"
                )
            return EHealthName("SSIN", actor.id_value, person_name(signer["firstName"], signer["lastName"]))
        org_name = (
            s.connection()
            .execute(_ORGANISATION_NAME, {"id_type": actor.id_type, "number": actor.id_value})
            .scalar_one_or_none()
        )
        if org_name is None:
            raise DomainError(
                ErrorKind.NOT_FOUND,
                f"organisation {actor.id_type}={actor.id_value} is not in the authentic source",
            )
        return EHealthName(actor.id_type, actor.id_value, org_name.upper(), actor.application_id)

    def _signer(self, raw: dict[str, Any]) -> dict[str, str]:
        return {
            "ssin": validate_ssin(_str(raw, "ssin")),
            "firstName": _str(raw, "firstName"),
            "lastName": _str(raw, "lastName"),
        }

    def generate_contract(self, environment: Environment, body: dict[str, Any]) -> dict[str, Any]:
        signer = self._signer(_dict(body, "signer"))
        actor = parse_actor(_dict(body, "certificateIdentifier"))
        with self.rt.db.read() as s:
            name = self._subject_for(s, actor, signer)
        return _contract(environment, build_subject(name).rfc4514_string(), signer, actor)

    # -- GenerateCertificate ------------------------------------------------------------------------
    def _active_for_dn(self, s: Session, environment: Environment, dn: str) -> list[Certificate]:
        now = self.rt.clock.now()
        return list(
            s.execute(
                select(Certificate).where(
                    Certificate.environment == environment.value,
                    Certificate.subject_dn == dn,
                    Certificate.status == CertState.ISSUED,
                    Certificate.not_after >= now,
                )
            ).scalars()
        )

    def _entitlement(
        self, s: Session, environment: Environment, actor: Actor, signer_ssin: str, project_name: str | None
    ) -> tuple[bool, int | None]:
        """(automatically validated, project id). Refuses signers that cannot be entitled at all."""
        if environment is Environment.ACCEPTANCE:
            if not project_name:
                raise DomainError(
                    ErrorKind.NOT_ENTITLED, "acceptance requests must name a registered project"
                )
            project = s.connection().execute(_PROJECT, {"name": project_name}).first()
            if project is None:
                raise DomainError(ErrorKind.NOT_FOUND, f"no acceptance project named {project_name!r}")
            if signer_ssin not in project.ssins:
                raise DomainError(
                    ErrorKind.NOT_ENTITLED, f"the signer is not registered for project {project_name!r}"
                )
            return True, int(project.id)
        if actor.is_person:
            quals = s.connection().execute(_QUALITIES, {"ssin": actor.id_value}).scalars()
            return any(q in CARE_QUALITIES for q in quals), None
        return _has_mandate(s, signer_ssin, actor.id_type, actor.id_value), None

    def generate_certificate(self, environment: Environment, token: str) -> dict[str, Any]:
        # Everything that needs no write lock comes first (signature, CSR, key policy, contract, authentic
        # sources, TBS build + lint); the write transaction holds only the checks that concurrent requests
        # could race (replay, blocked key, key reuse, DN in progress or active) and the inserts, all Core.
        signed = self._authenticate(token, "signature")
        body = signed.body
        contract = _dict(body, "contract")
        signer = self._signer(_dict(contract, "signer"))
        actor = parse_actor(_dict(contract, "certificateIdentifier"))
        try:
            csr_der = base64.b64decode(_str(body, "csr"), validate=True)
        except ValueError as exc:
            raise DomainError(ErrorKind.BAD_CSR, "csr is not valid base64") from exc
        csr = parse_csr(csr_der)
        check_public_key(csr.public_key, debian_weak_keys=self.rt.debian_weak_keys)
        spki = spki_sha256(csr.public_key)
        pki = public_key_identifier(csr.public_key).hex()
        contact = _contact(body.get("contactData"))
        usage = body.get("baseServiceUsage")
        usage = [] if usage is None else usage  # `or []` would let {}, 0 and "" through
        if not isinstance(usage, list) or not all(isinstance(u, str) for u in usage):
            raise DomainError(ErrorKind.BAD_REQUEST, "baseServiceUsage must be a list of strings")
        project = body.get("project")
        with self.rt.db.read() as rs:
            name = self._subject_for(rs, actor, signer)
            auto, project_id = self._entitlement(
                rs, environment, actor, signed.identity.ssin, project if isinstance(project, str) else None
            )
        subject = build_subject(name)
        dn = subject.rfc4514_string()
        contracts.require_unchanged(contract, _contract(environment, dn, signer, actor))
        if signed.identity.ssin != signer["ssin"]:
            raise DomainError(ErrorKind.NOT_ENTITLED, "the eID that signed is not the contract's signer")
        if not names_equal(csr.subject, subject):
            raise DomainError(ErrorKind.CONTRACT_MISMATCH, "the CSR subject differs from the contract DN")
        prepared = self.issuance.prepare(environment, name, csr.public_key) if auto else None
        request_id = str(uuid.uuid4())
        with self.rt.db.transaction() as s:
            # two requests for the same DN must not both pass the checks below (PostgreSQL: READ COMMITTED)
            serialise_on(s, f"certificate-dn:{environment.value}:{dn}")
            self._consume(s, signed)
            conn = s.connection()
            if conn.execute(_BLOCKED_KEY, {"spki": spki}).first():
                raise DomainError(
                    ErrorKind.WEAK_KEY, "this key was revoked for key compromise", check="compromised"
                )
            if conn.execute(_KEY_USED, {"pki": pki}).first():
                raise DomainError(
                    ErrorKind.CONFLICT, "this key was already used in a request; generate a new key"
                )
            if conn.execute(_DN_IN_PROGRESS, {"env": environment.value, "dn": dn}).first():
                raise DomainError(ErrorKind.CONFLICT, f"a request for {dn} is already in progress")
            now = self.rt.clock.now()
            replaces: tuple[int, str] | None = None  # (id, PublicKeyIdentifier) of the certificate replaced
            latest = None
            for cert_id, not_after, cert_pki in conn.execute(
                _ACTIVE_FOR_DN, {"env": environment.value, "dn": dn, "now": now}
            ):
                opens = utc(not_after) - REPLACEMENT_PERIOD
                if now < opens:
                    raise DomainError(
                        ErrorKind.RENEWAL_NOT_OPEN,
                        f"an active certificate exists for this DN; renewal opens on {opens.isoformat()}",
                        opens=opens.isoformat(),
                    )
                if latest is None or not_after > latest:
                    latest, replaces = not_after, (cert_id, cert_pki)
            try:
                conn.execute(
                    _INSERT_REQUEST,
                    {
                        "id": request_id,
                        "environment": environment.value,
                        "entity_type": "NaturalPerson" if actor.is_person else "Organization",
                        "actor_type": actor.id_type,
                        "actor_id": actor.id_value,
                        "application_id": actor.application_id,
                        "subject_dn": dn,
                        "holder_name": name.name,
                        "public_key_identifier": pki,
                        "spki_sha256": spki,
                        "csr_der": csr.der,
                        "contract": contract,
                        "contact": contact,
                        "base_service_usage": usage,
                        "signer_ssin": signed.identity.ssin,
                        "project_id": project_id,
                        "status": RequestState.APPROVED if auto else RequestState.PENDING_APPROVAL,
                        "automatically_validated": auto,
                        "replaces_certificate_id": replaces[0] if replaces else None,
                        "requested_at": now,
                        "decided_at": now if auto else None,
                        "decided_by": "authentic-source" if auto else None,
                    },
                )
            except IntegrityError as exc:  # the same key in a concurrent request (unique index)
                raise DomainError(
                    ErrorKind.CONFLICT, "this key was already used in a request; generate a new key"
                ) from exc
            self.rt.audit.append(
                s,
                actor=f"SSIN={signed.identity.ssin}",
                action="certificate.requested",
                obj=f"{environment}/request/{request_id}",
                dn=dn,
                public_key_identifier=pki,
                automatically_validated=auto,
            )
            intent = None
            if prepared is not None:
                intent = self.issuance.insert_intent(
                    s,
                    request_id=request_id,
                    environment=environment,
                    subject_dn=dn,
                    public_key_identifier=pki,
                    spki_sha256=spki,
                    prepared=prepared,
                )
        # committed: request and intent together; the signature happens outside the transaction
        if intent is not None:
            self.issuance.complete(intent)
        return {
            "publicKeyIdentifier": pki,
            "automaticallyValidated": auto,
            "replacesCertificate": replaces[1] if replaces else None,
        }

    # -- GetCertificate -----------------------------------------------------------------------------
    def get_certificate(self, environment: Environment, public_key_identifier_hex: str) -> list[bytes]:
        pki = _pki_hex(public_key_identifier_hex)
        with self.rt.db.read() as s:
            req = s.execute(
                select(CertificateRequest).where(
                    CertificateRequest.public_key_identifier == pki,
                    CertificateRequest.environment == environment.value,
                )
            ).scalar_one_or_none()
            if req is None:
                raise DomainError(
                    ErrorKind.NOT_FOUND, f"no certificate request with PublicKeyIdentifier {pki}"
                )
            if req.status == RequestState.REFUSED:
                raise DomainError(
                    ErrorKind.FORBIDDEN, f"the request was refused: {req.decision_reason or ''}".strip()
                )
            cert = _latest_certificate(s, req.id)
            if cert is None or cert.der is None:
                raise DomainError(
                    ErrorKind.NOT_YET_DELIVERED, "CERT_NOT_YET_DELIVERED", code="CERT_NOT_YET_DELIVERED"
                )
            chain = [cert.der]
        er = self.rt.environments[environment]
        return chain + [c.public_bytes(serialization.Encoding.DER) for c in er.chain()]

    # -- operator decisions -------------------------------------------------------------------------
    def list_requests(self, *, status: str | None = None) -> list[dict[str, Any]]:
        with self.rt.db.read() as s:
            q = select(CertificateRequest).order_by(CertificateRequest.requested_at)
            if status:
                q = q.where(CertificateRequest.status == status)
            return [
                {
                    "id": r.id,
                    "environment": r.environment,
                    "dn": r.subject_dn,
                    "status": r.status,
                    "requester": r.signer_ssin,
                    "publicKeyIdentifier": r.public_key_identifier,
                    "requestedAt": utc(r.requested_at).isoformat(),
                }
                for r in s.execute(q).scalars()
            ]

    def _decide(self, request_id: str, operator: str, target: RequestState, reason: str | None) -> None:
        with self.rt.db.transaction() as s:
            # the row lock makes a second, concurrent decision wait and then see the first one (PostgreSQL)
            req = s.get(CertificateRequest, request_id, with_for_update=True)
            if req is None:
                raise DomainError(ErrorKind.NOT_FOUND, f"no request {request_id}")
            if operator == f"SSIN={req.signer_ssin}" or operator == req.signer_ssin:
                raise DomainError(ErrorKind.FORBIDDEN, "four eyes: the approver cannot be the requester")
            req.status = transition_request(req.status, target)
            req.decided_by, req.decided_at, req.decision_reason = operator, self.rt.clock.now(), reason
            self.rt.audit.append(
                s,
                actor=operator,
                action="certificate.approved" if target is RequestState.APPROVED else "certificate.refused",
                obj=f"{req.environment}/request/{req.id}",
                reason=reason,
            )

    def approve(self, request_id: str, operator: str) -> x509.Certificate:
        self._decide(request_id, operator, RequestState.APPROVED, None)
        return self.issuance.issue(request_id).certificate

    def refuse(self, request_id: str, operator: str, reason: str) -> None:
        self._decide(request_id, operator, RequestState.REFUSED, reason)

    # -- revocation ---------------------------------------------------------------------------------
    def _certificate_by_pki(
        self, s: Session, environment: Environment, pki: str, *, for_update: bool = False
    ) -> Certificate:
        """``for_update``: lock the row, so that a concurrent revocation waits and then sees this one."""
        query = select(Certificate).where(
            Certificate.environment == environment.value,
            Certificate.public_key_identifier == pki,
            Certificate.status != CertState.SIGNING,
        )
        cert = s.execute(query.with_for_update() if for_update else query).scalar_one_or_none()
        if cert is None:
            raise DomainError(ErrorKind.NOT_FOUND, f"no certificate with PublicKeyIdentifier {pki}")
        return cert

    def _holder_entitled(self, s: Session, cert: Certificate, ssin: str) -> bool:
        req = s.get(CertificateRequest, cert.request_id) if cert.request_id else None
        if req is None:
            return False
        if req.actor_type == "SSIN":
            return req.actor_id == ssin
        return _has_mandate(s, ssin, req.actor_type, req.actor_id) or req.signer_ssin == ssin

    def generate_revocation_contract(self, environment: Environment, body: dict[str, Any]) -> dict[str, Any]:
        pki = _pki_hex(_str(body, "publicKeyIdentifier"))
        reason = _str(body, "revocationReason")
        if reason not in REASONS:
            raise DomainError(ErrorKind.BAD_REQUEST, f"revocationReason must be one of {sorted(REASONS)}")
        signer = self._signer(_dict(body, "signer"))
        with self.rt.db.read() as s:
            cert = self._certificate_by_pki(s, environment, pki)
            dn = cert.subject_dn
        return contracts.revocation_contract(
            environment=environment.value, dn=dn, signer=signer, public_key_identifier=pki, reason=reason
        )

    def _revoke(self, s: Session, cert: Certificate, reason: str, actor: str) -> tuple[int, str, bytes]:
        """Revoke in the caller's transaction; returns (issuer id, serial, the re-signed OCSP response) for
        ``StatusService.remember`` once the caller has committed."""
        if cert.status == CertState.REVOKED:
            raise DomainError(ErrorKind.CONFLICT, "the certificate is already revoked")
        if reason not in REASONS:
            raise DomainError(ErrorKind.BAD_REQUEST, f"revocation reason must be one of {sorted(REASONS)}")
        cert.status = transition_cert(cert.status, CertState.REVOKED)
        cert.revoked_at = self.rt.clock.now()
        cert.revocation_reason = reason
        cert.revoked_by = actor
        if reason == "keyCompromise" and s.get(BlockedKey, cert.spki_sha256) is None:
            s.add(BlockedKey(spki_sha256=cert.spki_sha256, reason=reason, blocked_at=self.rt.clock.now()))
        response = self.status.sign_response(s, cert)
        self.rt.audit.append(
            s,
            actor=actor,
            action="certificate.revoked",
            obj=f"{cert.environment}/serial/{cert.serial}",
            reason=reason,
        )
        for hook in self.on_revoked:
            hook(s, cert)
        return cert.issuer_id, cert.serial, response.der

    def revoke(self, environment: Environment, token: str) -> None:
        with self.rt.db.transaction() as s:
            signed = self._verify(s, token, "signature")
            body = signed.body
            pki = _pki_hex(_str(body, "publicKeyIdentifier"))
            contract = _dict(body, "contract")
            signer = self._signer(_dict(contract, "signer"))
            reason = _str(contract, "revocationReason")
            cert = self._certificate_by_pki(s, environment, pki, for_update=True)
            contracts.require_unchanged(
                contract,
                contracts.revocation_contract(
                    environment=environment.value, dn=cert.subject_dn, signer=signer,
                    public_key_identifier=pki, reason=reason,
                ),
            )  # fmt: skip
            if signed.identity.ssin != signer["ssin"] or not self._holder_entitled(
                s, cert, signed.identity.ssin
            ):
                raise DomainError(ErrorKind.NOT_ENTITLED, "only the holder (or a mandated person) may revoke")
            revoked = self._revoke(s, cert, reason, f"SSIN={signed.identity.ssin}")
        self.status.remember(*revoked)

    def operator_revoke(
        self, environment: Environment, public_key_identifier_hex: str, reason: str, operator: str
    ) -> None:
        pki = _pki_hex(public_key_identifier_hex)
        with self.rt.db.transaction() as s:
            cert = self._certificate_by_pki(s, environment, pki, for_update=True)
            revoked = self._revoke(s, cert, reason, operator)
        self.status.remember(*revoked)

    # -- GetCertificateInfoForCitizen ---------------------------------------------------------------
    def certificate_info(self, s: Session, req: CertificateRequest) -> dict[str, Any]:
        now = self.rt.clock.now()
        cert = _latest_certificate(s, req.id)
        status: CertificateStatus
        if req.status == RequestState.REFUSED:
            status = CertificateStatus.REFUSED
        elif cert is None:
            status = CertificateStatus.IN_PROGRESS
        elif cert.status == CertState.REVOKED:
            status = CertificateStatus.REVOKED
        elif now > utc(cert.not_after):
            status = CertificateStatus.EXPIRED
        else:
            status = CertificateStatus.VALID_ACTIVE
        info: dict[str, Any] = {
            "requestedDate": utc(req.requested_at).isoformat(),
            "publicKeyIdentifier": req.public_key_identifier,
            "certificateEntity": {
                "entityType": req.entity_type,
                "identifier": {
                    "type": req.actor_type,
                    "value": req.actor_id,
                    "applicationId": req.application_id,
                },
            },
            "authenticationCertificateStatus": status.value,
            "etkStatus": "NOT_REQUESTED",
            "automaticallyValidated": req.automatically_validated,
            "revocable": status is CertificateStatus.VALID_ACTIVE,
            "replaceable": False,
            "contactData": req.contact,
            "baseServiceUsage": req.base_service_usage,
        }
        if cert is not None and cert.der is not None:
            opens = utc(cert.not_after) - REPLACEMENT_PERIOD
            info["authenticationCertificateDetails"] = {
                "serialNumber": str(int(cert.serial, 16)),
                "dn": cert.subject_dn,
                "issuerDn": x509.load_der_x509_certificate(cert.der).issuer.rfc4514_string(),
                "validNotBefore": utc(cert.not_before).isoformat(),
                "validNotAfter": utc(cert.not_after).isoformat(),
            }
            info["replacementPeriodStartDate"] = opens.isoformat()
            info["replaceable"] = status is CertificateStatus.VALID_ACTIVE and now >= opens
        for hook in self.info_hooks:
            hook(s, req, cert, info)
        return info

    def certificate_info_for_citizen(self, environment: Environment, token: str) -> list[dict[str, Any]]:
        signed = self._verified(token, "authentication")
        ssin = signed.identity.ssin
        with self.rt.db.read() as s:
            org_ids = [(o.id_type, o.number) for o in _mandated_organisations(s, ssin)]
            reqs = list(
                s.execute(
                    select(CertificateRequest)
                    .where(CertificateRequest.environment == environment.value)
                    .order_by(CertificateRequest.requested_at)
                ).scalars()
            )
            mine = [
                r
                for r in reqs
                if (r.actor_type == "SSIN" and r.actor_id == ssin)
                or (r.actor_type, r.actor_id) in org_ids
                or r.signer_ssin == ssin
            ]
            return [self.certificate_info(s, r) for r in mine]
