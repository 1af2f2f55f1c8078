"""Operator API tokens: only the SHA-256 of a token is kept; the token itself is shown once, at creation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ehealth_certs.storage.models.base import Base


class OperatorToken(Base):
    """A bearer token an operator (a person or a deployment pipeline) uses on the REST write endpoints."""

    __tablename__ = "operator_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # never reused, even after revocation: an audit actor names exactly one token
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
