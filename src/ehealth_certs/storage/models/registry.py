"""Service registry (catalogue, versions, endpoints, documents, subscribers) and the mail outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ehealth_certs.storage.models.base import Base


class RegistryService(Base):
    """A web service of the catalogue (the functional data: what it is, where its documentation is)."""

    __tablename__ = "registry_services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    protocol: Mapped[str] = mapped_column(String(16))  # REST | SOAP | OCSP | CRL | TSL (informative)
    documentation: Mapped[list[str]] = mapped_column(JSON, default=list)  # links
    owner: Mapped[str] = mapped_column(String(100))  # "platform" for the built-in services, else the operator
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RegistryVersion(Base):
    """One version of a service (the technical data hangs below it)."""

    __tablename__ = "registry_versions"
    __table_args__ = (UniqueConstraint("service_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("registry_services.id"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # see registry.states
    status_since: Mapped[datetime]
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class RegistryEndpoint(Base):
    """Where a version answers, per environment and binding (a UDDI bindingTemplate, simplified)."""

    __tablename__ = "registry_endpoints"
    __table_args__ = (UniqueConstraint("version_id", "environment", "binding"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("registry_versions.id"), index=True)
    environment: Mapped[str] = mapped_column(String(16))
    binding: Mapped[str] = mapped_column(String(16))  # rest | soap | http
    url: Mapped[str] = mapped_column(String(500))


class RegistryDocument(Base):
    """An interface document (WSDL, XSD) of a version, kept under its relative path so imports resolve."""

    __tablename__ = "registry_documents"
    __table_args__ = (UniqueConstraint("version_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("registry_versions.id"), index=True)
    path: Mapped[str] = mapped_column(String(300))
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))


class RegistrySubscription(Base):
    """An e-mail address that asked for change notices (double opt-in)."""

    __tablename__ = "registry_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | confirmed | unsubscribed
    created_at: Mapped[datetime]
    confirmation_sent_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RegistryToken(Base):
    """A link token: public ``selector`` to find the row, SHA-256 of the secret ``verifier`` to check it."""

    __tablename__ = "registry_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("registry_subscriptions.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # confirm | unsubscribe
    selector: Mapped[str] = mapped_column(String(32), unique=True)
    verifier_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class MailMessage(Base):
    """The outbox: a mail is written in the transaction of the change it describes and sent later."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    topic: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
