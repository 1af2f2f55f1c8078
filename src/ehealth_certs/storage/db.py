"""Engine set-up, durability checks, and the unit of work.

Repositories never commit; a service opens one ``Database.transaction()`` per use case and the
commit happens when the block ends without an error.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from ehealth_certs.errors import DomainError, ErrorKind

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is switched off so that we can BEGIN IMMEDIATE ourselves.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


_READ_ONLY = "ehcerts_read_only"
_AFTER_COMMIT = "ehcerts_after_commit"


def after_commit(session: Session, key: str, action: Callable[[], None]) -> None:
    """Run ``action`` once the transaction of ``session`` (a ``Database.transaction()``) has committed,
    still under the write lock; never after a rollback. A later call with the same ``key`` replaces it.
    Cheaper than a SQLAlchemy event listener per session on the hot path."""
    session.info.setdefault(_AFTER_COMMIT, {})[key] = action


def _sqlite_begin(conn: Any) -> None:
    # Write transactions take the lock up front: no "database is locked" half-way through a use case.
    # Read-only sessions begin deferred: in WAL mode a reader never waits for, nor blocks, the writer.
    if conn.get_execution_options().get(_READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def serialise_on(session: Session, name: str) -> None:
    """Make concurrent transactions about ``name`` (a DN, say) run one after the other: the check-then-insert
    of the caller cannot interleave. SQLite needs nothing (one writer at a time); PostgreSQL takes a
    transaction-level advisory lock on a 64-bit digest of the name, released at commit or rollback."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, *, echo: bool = False, **engine_kw: Any) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            db_path = url.split("///", 1)[-1]
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            engine_kw.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        else:
            engine_kw.setdefault("pool_size", 10)
            engine_kw.setdefault("max_overflow", 20)
        engine_kw.setdefault("pool_pre_ping", not self.is_sqlite)
        self.engine: Engine = create_engine(url, echo=echo, **engine_kw)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False, autoflush=True
        )
        # SQLite has one writer at a time and its busy handler polls with sleeps of up to 100 ms, so a queue
        # of writers wakes late. Writers queue here instead: a thread lock within the process and an flock
        # across processes (workers, operator commands) wake the next writer at once.
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._flock_path: str | None = None
        if self.is_sqlite:
            db_path = url.split("///", 1)[-1]
            if db_path and db_path != ":memory:":
                self._flock_path = db_path + ".writelock"

    def check_durability(self) -> None:
        """Refuse to run on settings that could lose an acknowledged commit."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                got = {
                    "journal_mode": str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower(),
                    "synchronous": int(conn.exec_driver_sql("PRAGMA synchronous").scalar() or 0),
                    "foreign_keys": int(conn.exec_driver_sql("PRAGMA foreign_keys").scalar() or 0),
                }
                want: dict[str, object] = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
                if self.url.endswith(":memory:"):
                    want["journal_mode"] = "memory"
            else:
                got = {
                    name: str(conn.execute(text(f"SHOW {name}")).scalar())
                    for name in ("synchronous_commit", "fsync", "full_page_writes")
                }
                want = {"synchronous_commit": "on", "fsync": "on", "full_page_writes": "on"}
            conn.rollback()
        bad = {k: v for k, v in got.items() if v != want[k]}
        if bad:
            raise DomainError(
                ErrorKind.CONFIGURATION,
                f"database durability settings refused: {bad} (required {want})",
            )

    @contextmanager
    def _serialised(self) -> Iterator[None]:
        if not self.is_sqlite:
            yield
            return
        with self._write_lock:
            depth: int = getattr(self._local, "depth", 0)
            fd = None
            if depth == 0 and self._flock_path is not None:
                fd = os.open(self._flock_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work: commits at the end, rolls back on any exception."""
        with self._serialised():
            session = self._sessions()
            try:
                yield session
                session.commit()
                for action in session.info.pop(_AFTER_COMMIT, {}).values():
                    action()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (public read paths, and the checks a use case makes before its write
        transaction). On SQLite it takes no write lock; nothing written in it is ever committed."""
        session = self._read_sessions()
        try:
            yield session
        finally:
            # close() without rollback(): loaded objects stay readable after the block; the pool
            # resets the connection (rolls the DBAPI transaction back) when it takes it back
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def migrate(db: Database) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
