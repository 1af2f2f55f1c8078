"""Crash consistency of the issuance cycle: the real server is SIGKILLed between intent and store.

``EHCERTS_FAILPOINT`` kills the server right after the intent commit or right after the signature. The
client's HTTP call fails (connection dropped). Restarted without the failpoint, the server reconciles before
serving: the ``signing`` row is revoked (superseded) and shows as revoked in OCSP and the CRL, the request is
issued again under a NEW serial, GetCertificate delivers exactly one certificate, no serial appears twice
and the audit chain verifies.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from ehealth_certs.cli.main import app
from ehealth_certs.client.http import PlatformClient
from ehealth_certs.client.manager import CertificateManager
from ehealth_certs.clock import SystemClock
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.platform import Platform
from tests.conftest import PASSPHRASE, LiveServer, start_live_server, stop_live_server
from tests.ra.helpers import add_doctor

SSIN = "79121430944"


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    started: list[LiveServer] = []
    yield started
    for server in started:
        if server.process.poll() is None:  # type: ignore[attr-defined]
            stop_live_server(server)


def _db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "ehcerts.db")


def _prepare(data_dir: Path, url: str, citizen_ca: Any) -> None:
    """Trust the test Citizen CA and register the doctor, in process (a CLI start costs seconds)."""
    settings = Settings(data_dir=data_dir, ca_passphrase=PASSPHRASE, public_base_url=url)  # type: ignore[arg-type]
    p = Platform.start(settings, create_pki=False)
    try:
        p.trust.add("test-citizen-ca", citizen_ca[0].public_bytes(serialization.Encoding.PEM))
        add_doctor(p, SSIN)
    finally:
        p.close()


@pytest.mark.parametrize("failpoint", ["issuance.after_intent", "issuance.after_sign"])
def test_crash_during_issuance_is_reconciled(failpoint: str, live_data_dir: Path, live_port: int,
                                            servers: list[LiveServer], tmp_path: Path, citizen_ca: Any,
                                            eid_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    _prepare(live_data_dir, f"http://127.0.0.1:{live_port}", citizen_ca)
    crashing = start_live_server(live_data_dir, port=live_port, extra_env={"EHCERTS_FAILPOINT": failpoint})
    servers.append(crashing)

    def manager(url: str) -> CertificateManager:
        return CertificateManager(client=PlatformClient(url, Environment.PRODUCTION), clock=SystemClock(),
                                  confirm=lambda _c: True)  # fmt: skip

    card = eid_factory(SSIN, tmp=tmp_path).card
    with pytest.raises(DomainError) as err:
        manager(crashing.url).request(card, keystore_dir=tmp_path / "ks", password="pw", contact={
            "emailPrivate": "jan@example.be"})  # fmt: skip
    assert err.value.kind is ErrorKind.UNAVAILABLE  # the connection dropped with the process
    assert crashing.process.wait(timeout=30) == -9  # type: ignore[attr-defined]
    keystore = next((tmp_path / "ks").glob("*.p12"))  # the key is kept: the outcome was unknown to the client

    with _db(live_data_dir) as db:
        ((request_id, request_status),) = db.execute("SELECT id, status FROM certificate_requests").fetchall()
        ((abandoned_serial, status, der),) = db.execute(
            "SELECT serial, status, der FROM certificates WHERE request_id = ?", (request_id,)
        ).fetchall()
    assert (request_status, status, der) == ("APPROVED", "signing", None)

    server = start_live_server(live_data_dir, port=live_port)  # reconciles before it serves
    servers.append(server)
    with _db(live_data_dir) as db:
        rows = db.execute(
            "SELECT serial, status, revocation_reason, der IS NOT NULL FROM certificates WHERE request_id = ? "
            "ORDER BY id",
            (request_id,),
        ).fetchall()
        duplicates = db.execute(
            "SELECT issuer_id, serial FROM certificates GROUP BY issuer_id, serial HAVING count(*) > 1"
        ).fetchall()
        assert db.execute("SELECT status FROM certificate_requests").fetchall() == [("ISSUED",)]
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert rows[0] == (abandoned_serial, "revoked", "superseded", 0)
    assert len(rows) == 2 and rows[1][1:] == ("issued", None, 1) and rows[1][0] != abandoned_serial
    assert duplicates == []

    # the holder completes the keystore: exactly one certificate, with the new serial
    delivered = manager(server.url).complete(keystore, "pw")
    assert delivered is not None and format(delivered.serial_number, "x") == rows[1][0]
    chain = PlatformClient(server.url, Environment.PRODUCTION).get_certificate(
        delivered.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    )
    assert next(x509.load_der_x509_certificate(c) for c in chain) == delivered and len(chain) == 2

    # the abandoned serial is revoked in OCSP (openssl as the judge) and in the CRL
    issuing = tmp_path / "issuing.pem"
    issuing.write_bytes(x509.load_der_x509_certificate(httpx.get(f"{server.url}/pki/production/issuing.crt").content)
                        .public_bytes(serialization.Encoding.PEM))  # fmt: skip
    answer = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuing), "-serial", f"0x{abandoned_serial}", "-url",
         f"{server.url}/pki/production/ocsp", "-CAfile", str(issuing), "-partial_chain", "-no_nonce"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Response verify OK" in answer.stderr + answer.stdout, answer
    assert f"0x{abandoned_serial}: revoked" in answer.stdout.replace(
        f"0x{abandoned_serial.upper()}", f"0x{abandoned_serial}"
    )
    assert "Reason: superseded" in answer.stdout
    crl = x509.load_der_x509_crl(httpx.get(f"{server.url}/pki/production/crl").content)
    assert crl.get_revoked_certificate_by_serial_number(int(abandoned_serial, 16)) is not None
    assert crl.get_revoked_certificate_by_serial_number(delivered.serial_number) is None

    # `ehcerts admin audit verify`, in process (CliRunner) on the server's data directory
    for name, value in server.env.items():
        if name.startswith("EHCERTS_"):
            monkeypatch.setenv(name, value)
    verified = CliRunner().invoke(app, ["admin", "audit", "verify", "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["status"] == "ok", verified.stdout
    with _db(live_data_dir) as db:
        actions = [a for (a,) in db.execute("SELECT action FROM audit_events ORDER BY seq")]
    assert actions.count("certificate.abandoned") == 1 and actions.count("certificate.issued") == 1
