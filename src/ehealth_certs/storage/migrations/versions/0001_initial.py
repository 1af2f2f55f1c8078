"""Initial schema.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # TEMPORARY during initial development: replaced by explicit DDL before the first release.
    from ehealth_certs.storage.models import Base

    Base.metadata.create_all(op.get_bind())


def downgrade() -> None:
    from ehealth_certs.storage.models import Base

    Base.metadata.drop_all(op.get_bind())
