"""Shared fixtures: platforms on SQLite and PostgreSQL, a frozen clock, test eIDs, an in-process client.

The CA keys (RSA-4096) take seconds to generate, so the PKI is created once per test session and copied
into each test's data directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from ehealth_certs.client.eid import FileEid
from ehealth_certs.clock import FixedClock
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.pki.ceremony import EnvironmentPki
from ehealth_certs.pkistore import PkiStore
from ehealth_certs.platform import Platform
from tests.paths import DATA

CitizenCa = tuple[x509.Certificate, rsa.RSAPrivateKey]
PASSPHRASE = "test-only ca passphrase 4f0c"
PG_ADMIN_URL = os.environ.get("EHCERTS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
FIXTURES = DATA / "etee-fixtures"


_PKI_CACHE: dict[tuple[str, bytes], EnvironmentPki] = {}
_original_load = PkiStore.load


def _cached_load(self: PkiStore, environment: Environment) -> EnvironmentPki:
    """Every test copies the same PKI template; decrypting its keys (scrypt) once per session is enough."""
    import hashlib

    files = sorted(self.env_dir(environment).glob("*.pem"))
    digest = hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()
    key = (digest, self.passphrase)
    if key not in _PKI_CACHE:
        _PKI_CACHE[key] = _original_load(self, environment)
    return _PKI_CACHE[key]


PkiStore.load = _cached_load  # type: ignore[method-assign]


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
        ca_passphrase=SecretStr(PASSPHRASE),
        public_base_url="http://127.0.0.1:8443",
    )


@pytest.fixture
def platform(settings: Settings, clock: FixedClock) -> Iterator[Platform]:

    p = Platform.start(settings, clock, create_pki=False)
    yield p
    p.close()


@dataclass
class Person:
    ssin: str
    first_name: str
    last_name: str
    card: FileEid


@pytest.fixture(scope="session")
def citizen_ca() -> CitizenCa:
    from ehealth_certs.pki.eid_dev import create_citizen_ca

    return create_citizen_ca(now=START.replace(year=START.year - 2))


@pytest.fixture(scope="session")
def eid_factory(citizen_ca: CitizenCa) -> Callable[..., Person]:
    from ehealth_certs.pki.eid_dev import create_test_eid

    cache: dict[str, Person] = {}

    def make(ssin: str, first_name: str = "Jan", last_name: str = "Janssens", *, tmp: Path) -> Person:
        if ssin not in cache:
            eid = create_test_eid(
                ssin=ssin, first_name=first_name, last_name=last_name, ca=citizen_ca,
                now=START.replace(year=START.year - 1),
            )  # fmt: skip
            path = tmp / f"eid-{ssin}.json"
            FileEid.write(path, eid, "1234")
            cache[ssin] = Person(ssin, first_name, last_name, FileEid.open(path, "1234"))
        return cache[ssin]

    return make


@pytest.fixture
def trust_citizen_ca(platform: Platform, citizen_ca: CitizenCa) -> None:
    ca_cert = citizen_ca[0]
    platform.trust.add("test-citizen-ca", ca_cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def cli(
        self, *args: str, extra_env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ehcerts`` against this server's data directory (operator commands)."""
        import sys

        result = subprocess.run(
            [sys.executable, "-m", "ehealth_certs", *args],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"ehcerts {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_live_server(data_dir: Path, *, port: int, extra_env: dict[str, str] | None = None) -> LiveServer:
    """Start ``ehcerts serve`` in a subprocess and wait until /healthz answers."""
    import sys
    import time

    import httpx

    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EHCERTS_")},
        "EHCERTS_DATA_DIR": str(data_dir),
        "EHCERTS_CA_PASSPHRASE": PASSPHRASE,
        "EHCERTS_PORT": str(port),
        "EHCERTS_PUBLIC_BASE_URL": url,
        "EHCERTS_WORKERS": "1",  # crash tests kill "the server": one process; multi-worker tests override
        **(extra_env or {}),
    }
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "ehealth_certs", "serve"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {(data_dir / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url, data_dir, env, proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # waiting for a process to bind its port, not for domain time
    proc.kill()
    raise AssertionError("server did not become healthy within 60 s")


def stop_live_server(server: LiveServer) -> None:
    proc = server.process
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:
        proc.kill()


@pytest.fixture(scope="session")
def live_port() -> int:
    """One loopback port per test worker: the live PKI's CDP/AIA URLs name it."""
    return free_port()


@pytest.fixture(scope="session")
def live_pki_template(tmp_path_factory: pytest.TempPathFactory, live_port: int) -> Path:
    folder = tmp_path_factory.mktemp("live-pki") / "pki"
    store = PkiStore(folder, PASSPHRASE.encode())
    for env in Environment:
        store.create(env, now=START.replace(year=START.year - 1), base_url=f"http://127.0.0.1:{live_port}")
    return folder


@pytest.fixture
def live_data_dir(tmp_path: Path, live_pki_template: Path) -> Path:
    data = tmp_path / "live-data"
    data.mkdir()
    shutil.copytree(live_pki_template, data / "pki")
    return data


@pytest.fixture
def live_server(live_data_dir: Path, live_port: int) -> Iterator[LiveServer]:
    """A real ``ehcerts serve`` on this worker's loopback port, with a fresh SQLite database."""
    server = start_live_server(live_data_dir, port=live_port)
    yield server
    stop_live_server(server)
