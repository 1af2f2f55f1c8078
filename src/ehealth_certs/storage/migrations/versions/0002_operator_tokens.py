"""Operator API tokens (REST write side of the service registry).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ehealth_certs.storage.models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("expires_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", ehealth_certs.storage.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_operator_tokens_name")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_operator_tokens_token_sha256")),
    )


def downgrade() -> None:
    op.drop_table("operator_tokens")
