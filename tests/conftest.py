"""Shared fixtures: platforms on SQLite and PostgreSQL, a frozen clock, test eIDs, an in-process client.

The CA keys (RSA-4096) take seconds to generate, so the PKI is created once per test session and copied
into each test's data directory.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import create_engine, text

from ehealth_certs.clock import FixedClock
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.pkistore import PkiStore

PASSPHRASE = "test-only ca passphrase 4f0c"
PG_ADMIN_URL = os.environ.get("EHCERTS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
SHARED = Path(__file__).resolve().parents[2] / "shared"
if not SHARED.exists():
    SHARED = Path("/work/shared")
FIXTURES = SHARED / "data" / "etee-fixtures"


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


PG_AVAILABLE = _pg_available()
BACKENDS = ["sqlite", "postgresql"] if PG_AVAILABLE or os.environ.get("CI") else ["sqlite"]


@pytest.fixture(scope="session")
def pki_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki-template") / "pki"
    store = PkiStore(folder, PASSPHRASE.encode())
    for env in Environment:
        store.create(env, now=START.replace(year=START.year - 1), base_url="http://127.0.0.1:8443")
    return folder


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ehcerts.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, pki_template: Path) -> Settings:
    data = tmp_path / "data"
    shutil.copytree(pki_template, data / "pki")
    return Settings(
        data_dir=data,
        database_url=database_url,
        ca_passphrase=PASSPHRASE,  # type: ignore[arg-type]
        public_base_url="http://127.0.0.1:8443",
    )


@pytest.fixture
def platform(settings: Settings, clock: FixedClock) -> Iterator[object]:
    from ehealth_certs.platform import Platform

    p = Platform.start(settings, clock, create_pki=False)
    yield p
    p.close()


@dataclass
class Person:
    ssin: str
    first_name: str
    last_name: str
    card: object


@pytest.fixture(scope="session")
def citizen_ca() -> tuple[object, object]:
    from ehealth_certs.pki.eid_dev import create_citizen_ca

    return create_citizen_ca(now=START.replace(year=START.year - 2))


@pytest.fixture(scope="session")
def eid_factory(citizen_ca: tuple[object, object]) -> object:
    from ehealth_certs.client.eid import FileEid
    from ehealth_certs.pki.eid_dev import create_test_eid

    cache: dict[str, Person] = {}

    def make(ssin: str, first_name: str = "Jan", last_name: str = "Janssens", *, tmp: Path) -> Person:
        if ssin not in cache:
            eid = create_test_eid(
                ssin=ssin, first_name=first_name, last_name=last_name, ca=citizen_ca,  # type: ignore[arg-type]
                now=START.replace(year=START.year - 1),
            )  # fmt: skip
            path = tmp / f"eid-{ssin}.json"
            FileEid.write(path, eid, "1234")
            cache[ssin] = Person(ssin, first_name, last_name, FileEid.open(path, "1234"))
        return cache[ssin]

    return make


@pytest.fixture
def trust_citizen_ca(platform: object, citizen_ca: tuple[object, object]) -> None:
    ca_cert = citizen_ca[0]
    platform.trust.add("test-citizen-ca", ca_cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[attr-defined]
