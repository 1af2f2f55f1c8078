"""Trusted-list tables: publications (signed lists), operator-added services, status history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ehealth_certs.storage.models.base import Base


class TslPublication(Base):
    """One TSLSequenceNumber of one environment's list.

    The row is committed in state ``signing`` before the list is signed (intent before signature), so a
    sequence number is never signed twice, even after a crash; ``published`` rows hold the exact bytes served.
    """

    __tablename__ = "tsl_publications"
    __table_args__ = (UniqueConstraint("environment", "sequence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    sequence: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))  # signing | published
    issue_time: Mapped[datetime]
    next_update: Mapped[datetime]
    services_digest: Mapped[str] = mapped_column(String(64))  # what was listed, to detect changes
    reason: Mapped[str] = mapped_column(String(64))
    published_by: Mapped[str] = mapped_column(String(100))
    xml: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TslOperatorService(Base):
    """A certificate an operator listed by hand (TLS server, timestamping authority, ...)."""

    __tablename__ = "tsl_operator_services"
    __table_args__ = (UniqueConstraint("environment", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the DER, lowercase hex
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    service_type: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[datetime]


class TslStatusChange(Base):
    """Each status a listed service has held (newest = current), for issuers and operator services alike.

    The ``issuers`` table only keeps the current status; this history is what lets a withdrawn CA stay
    listed with its ServiceHistory.
    """

    __tablename__ = "tsl_status_changes"
    __table_args__ = (UniqueConstraint("environment", "fingerprint", "since"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(255))  # TS 119 612 status URI
    since: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(100))
