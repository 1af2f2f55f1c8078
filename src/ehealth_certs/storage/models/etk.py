"""EtkRA and ETK depot tables: one row per ETK registration, from the challenge to revocation or expiry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ehealth_certs.storage.models.base import Base


class EtkRecord(Base):
    """An ETK of one authentication certificate.

    The row is created by StartETKRegistration (state ``IN_REQUEST``, holding the challenge) and carries the
    signed ETK from CompleteETKRegistration on. The depot looks rows up by (environment, id_type, id_value)
    and serves only ``VALID_ACTIVE`` rows whose authentication certificate has not expired.
    """

    __tablename__ = "etks"
    __table_args__ = (Index("ix_etks_lookup", "environment", "id_type", "id_value", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    id_type: Mapped[str] = mapped_column(String(40))
    id_value: Mapped[str] = mapped_column(String(20))
    application_id: Mapped[str | None] = mapped_column(String(30), nullable=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    # challenge (IN_REQUEST): SHA-256 of the 16-byte secret S, never S itself
    public_key_der: Mapped[bytes] = mapped_column(LargeBinary)
    challenge_sha256: Mapped[str] = mapped_column(String(64))
    challenge_expires_at: Mapped[datetime]
    # the ETK (from CompleteETKRegistration on)
    serial: Mapped[str | None] = mapped_column(String(50), nullable=True)  # decimal, the keystore alias
    der: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    not_after: Mapped[datetime]  # the authentication certificate's
    created_at: Mapped[datetime]
    registered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    activated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
