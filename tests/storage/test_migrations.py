"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from ehealth_certs.storage import Database, migrate
from ehealth_certs.storage.models import Base


def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url)
    migrate(db)
    migrate(db)  # idempotent: a second run changes nothing
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
        tables = set(inspect(conn).get_table_names())
    db.dispose()
    assert diff == [], diff
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
