"""Storage: SQLAlchemy 2 on SQLite (WAL, synchronous=FULL, foreign keys) or PostgreSQL."""

from ehealth_certs.storage.db import Database, migrate

__all__ = ["Database", "migrate"]
