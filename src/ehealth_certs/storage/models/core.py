"""CertRA, CA and status-service tables (the certificate lifecycle)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ehealth_certs.storage.models.base import Base


class Issuer(Base):
    """A certificate of the platform's own PKI: root, issuing CA, OCSP responder, EtkRA, TSL signer."""

    __tablename__ = "issuers"
    __table_args__ = (UniqueConstraint("environment", "role", "ski"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    ski: Mapped[str] = mapped_column(String(64))
    name_hash_sha1: Mapped[str] = mapped_column(String(40), index=True)
    key_hash_sha1: Mapped[str] = mapped_column(String(40), index=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | withdrawn
    status_since: Mapped[datetime]


class Professional(Base):
    """Authentic source of care qualities (imported by operators)."""

    __tablename__ = "professionals"
    __table_args__ = (UniqueConstraint("ssin", "quality"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ssin: Mapped[str] = mapped_column(String(11), index=True)
    first_name: Mapped[str] = mapped_column(String(200))
    last_name: Mapped[str] = mapped_column(String(200))
    quality: Mapped[str] = mapped_column(String(64))
    nihii: Mapped[str | None] = mapped_column(String(11), nullable=True)


class Organisation(Base):
    __tablename__ = "organisations"
    __table_args__ = (UniqueConstraint("id_type", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_type: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(300))


class Mandate(Base):
    """A person entitled to act (request, revoke) for an organisation."""

    __tablename__ = "mandates"
    __table_args__ = (UniqueConstraint("ssin", "organisation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ssin: Mapped[str] = mapped_column(String(11), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))


class Project(Base):
    """An integrator's acceptance project: who may obtain acceptance certificates, for which tests."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    ssins: Mapped[list[str]] = mapped_column(JSON)
    test_cases: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class CertificateRequest(Base):
    __tablename__ = "certificate_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    entity_type: Mapped[str] = mapped_column(String(16))  # NaturalPerson | Organization
    actor_type: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[str] = mapped_column(String(20))
    application_id: Mapped[str | None] = mapped_column(String(30), nullable=True)
    subject_dn: Mapped[str] = mapped_column(Text, index=True)
    holder_name: Mapped[str] = mapped_column(String(300))  # the OU=<NAME> of the DN, as the RA decided it
    public_key_identifier: Mapped[str] = mapped_column(String(40), unique=True)
    spki_sha256: Mapped[str] = mapped_column(String(64), index=True)
    csr_der: Mapped[bytes] = mapped_column(LargeBinary)
    contract: Mapped[dict[str, Any]] = mapped_column(JSON)
    contact: Mapped[dict[str, Any]] = mapped_column(JSON)
    base_service_usage: Mapped[list[str]] = mapped_column(JSON, default=list)
    signer_ssin: Mapped[str] = mapped_column(String(11), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(24))
    automatically_validated: Mapped[bool] = mapped_column(Boolean)
    # no foreign key: certificates already reference requests, and a cycle cannot be created on SQLite
    replaces_certificate_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Certificate(Base):
    """An end-entity certificate. The row exists (status ``signing``) before the signature does."""

    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("issuer_id", "serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"))
    serial: Mapped[str] = mapped_column(String(42))  # lower-case hex, no leading zeros
    request_id: Mapped[str | None] = mapped_column(
        ForeignKey("certificate_requests.id"), nullable=True, index=True
    )
    environment: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)  # signing | issued | revoked
    subject_dn: Mapped[str] = mapped_column(Text, index=True)
    public_key_identifier: Mapped[str] = mapped_column(String(40), index=True)
    spki_sha256: Mapped[str] = mapped_column(String(64), index=True)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    tbs_sha256: Mapped[str] = mapped_column(String(64))
    der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime]
    issued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class BlockedKey(Base):
    """Keys revoked for keyCompromise may never be certified again."""

    __tablename__ = "blocked_keys"

    spki_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    blocked_at: Mapped[datetime]


class Crl(Base):
    __tablename__ = "crls"
    __table_args__ = (UniqueConstraint("issuer_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"), index=True)
    number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[datetime]
    next_update: Mapped[datetime]
    der: Mapped[bytes] = mapped_column(LargeBinary)


class OcspResponse(Base):
    """Pre-signed OCSP responses, one per certificate, refreshed on revocation and before expiry."""

    __tablename__ = "ocsp_responses"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("issuers.id"), index=True)
    serial: Mapped[str] = mapped_column(String(42))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    this_update: Mapped[datetime]
    next_update: Mapped[datetime] = mapped_column(index=True)


class UsedRequestId(Base):
    """Ids of signed requests already accepted: a signed request is accepted once."""

    __tablename__ = "used_request_ids"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditEvent(Base):
    """Append-only, hash-chained security log."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
