"""Durability settings are checked at start; the unit of work commits or rolls back whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.storage import Database, migrate
from ehealth_certs.storage.models import Organisation, Professional


def test_sqlite_runs_with_wal_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    db.check_durability()
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_with_normal_sync_is_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")

    @event.listens_for(db.engine, "connect")
    def _weaken(dbapi_conn: object, _record: object) -> None:  # runs after the platform's own listener
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")  # type: ignore[attr-defined]

    with pytest.raises(DomainError) as err:
        db.check_durability()
    assert err.value.kind is ErrorKind.CONFIGURATION
    assert "synchronous" in err.value.detail


def test_postgresql_durability_is_checked(database_url: str) -> None:
    db = Database(database_url)
    db.check_durability()  # SHOW synchronous_commit/fsync/full_page_writes on PostgreSQL, PRAGMAs on SQLite
    db.dispose()


def test_unit_of_work_rolls_back_everything_on_error(database_url: str) -> None:
    db = Database(database_url)
    migrate(db)
    with pytest.raises(RuntimeError), db.transaction() as s:
        s.add(Organisation(id_type="CBE", number="0809394427", name="EHEALTH-PLATFORM"))
        s.flush()
        s.add(Professional(ssin="79121430944", first_name="Jan", last_name="Janssens", quality="doctor"))
        s.flush()
        raise RuntimeError("boom")
    with db.read() as s:
        assert s.execute(select(func.count()).select_from(Organisation)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(Professional)).scalar_one() == 0
    db.dispose()


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    from ehealth_certs.storage.models import Project

    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(db)
    with pytest.raises(Exception, match="naive"), db.transaction() as s:
        s.add(Project(name="p", ssins=[], test_cases=[], created_by="x", created_at=datetime(2026, 1, 1)))
        s.flush()
    with db.transaction() as s:
        s.add(
            Project(
                name="p", ssins=[], test_cases=[], created_by="x", created_at=datetime(2026, 1, 1, tzinfo=UTC)
            )
        )
    with db.read() as s:
        got = s.execute(select(Project.created_at)).scalar_one()
    assert got == datetime(2026, 1, 1, tzinfo=UTC) and got.tzinfo is not None
