"""Against a real ``ehcerts serve``: the stable URLs, the operator ``tl`` commands and ``truststore update``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from ehealth_certs.cli.main import app as cli_app
from ehealth_certs.environment import Environment
from ehealth_certs.pki import tsl
from ehealth_certs.pki.ceremony import EnvironmentPki
from ehealth_certs.pkistore import PkiStore
from ehealth_certs.trustlist.consume import verify_trusted_list
from tests.conftest import PASSPHRASE, LiveServer, free_port, start_live_server, stop_live_server
from tests.trustlist.test_service import judges_accept
from tests.trustlist.tl_helpers import make_cert, replace_once

pytestmark = pytest.mark.interop

TS_PASSWORD = "truststore-pass-7d1e"


def _pki(server: LiveServer, env: Environment) -> EnvironmentPki:
    return PkiStore(server.data_dir / "pki", PASSPHRASE.encode()).load(env)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, live_pki_template: Path, live_port: int
) -> Iterator[LiveServer]:
    """One ``ehcerts serve`` for the module (starting it costs seconds; each test uses its own stores)."""
    data = tmp_path_factory.mktemp("tl-live") / "data"
    data.mkdir()
    shutil.copytree(live_pki_template, data / "pki")
    live = start_live_server(data, port=live_port)
    yield live
    stop_live_server(live)


def _update(
    server: LiveServer, url: str, pins: list[Path], store: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    """``ehcerts truststore update --json`` in process (the console script itself runs in the file:// case)."""
    args = ["truststore", "update", "--url", url, "--dir", str(store), "--json", *extra]
    for pin in pins:
        args += ["--signer-cert", str(pin)]
    result = CliRunner().invoke(cli_app, args, env={"EHCERTS_TRUSTSTORE_PASSWORD": TS_PASSWORD})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout)


def _operator(server: LiveServer, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli_app, [*args, "--json"], env=server.env)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def _keytool_aliases(p12: Path, password: str | None) -> list[str]:
    cmd = ["keytool", "-list", "-storetype", "PKCS12", "-keystore", str(p12)]
    if password is not None:
        cmd += ["-storepass:env", "TS_PASS"]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, check=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "TS_PASS": password or ""},
    ).stdout  # fmt: skip
    return [line.split(",")[0] for line in out.splitlines() if "trustedCertEntry" in line]


def _label(certificate: x509.Certificate) -> str:
    return f"{certificate.subject.rfc4514_string()} sha256:{tsl.fingerprint(certificate)}"


@pytest.fixture(scope="module")
def tsa_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, "ehealth-certs Timestamping 001", eku=[ExtendedKeyUsageOID.TIME_STAMPING])
    path = tmp_path_factory.mktemp("tsa") / "tsa.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_truststore_follows_the_live_list(server: LiveServer, tmp_path: Path, tsa_pem: Path) -> None:
    pki = _pki(server, Environment.PRODUCTION)
    printed = server.cli("tl", "signer-cert", "--environment", "production").stdout  # type: ignore[attr-defined]
    assert x509.load_pem_x509_certificate(printed.encode()) == pki.tsl.certificate
    pin = tmp_path / "pin.pem"
    pin.write_text(printed)
    url = f"{server.url}/tsl/production.xml"
    store = tmp_path / "store"

    # The URLs: the exact signed bytes and their digest; every judge accepts them.
    xml = httpx.get(url)
    assert xml.status_code == 200 and xml.headers["content-type"] == tsl.TSL_MIME_TYPE
    assert httpx.get(f"{server.url}/tsl/production.sha2").content == tsl.sha2_digest_file(xml.content)
    judges_accept(xml.content, pki, tmp_path, at=None)

    code, first = _update(server, url, [pin], store)
    assert code == 0 and first["status"] == "installed" and first["sequence_number"] == 1, first
    expected = {pki.root.certificate, pki.issuing.certificate, pki.ocsp.certificate, pki.etkra.certificate}
    assert sorted(first["added"]) == sorted(_label(c) for c in expected) and first["removed"] == []
    assert (store / "current" / "tl.xml").read_bytes() == xml.content
    seq1 = (store / "current" / "tl.xml").read_bytes()

    code, second = _update(server, url, [pin], store)
    assert (
        code == 10 and second["status"] == "unchanged" and second["added"] == [] and second["removed"] == []
    )

    tsa = x509.load_pem_x509_certificate(tsa_pem.read_bytes())
    added = server.cli(
        "tl", "add-service", "--cert", str(tsa_pem), "--type", tsl.SERVICE_TSA, "--name", "ehealth-certs TSA",
        "--environment", "production", "--json",
    )  # fmt: skip
    assert json.loads(added.stdout)["sequence_number"] == 2  # type: ignore[attr-defined]
    code, third = _update(server, url, [pin], store)
    assert code == 0 and third["sequence_number"] == 2, third
    assert third["added"] == [_label(tsa)] and third["removed"] == []
    aliases = _keytool_aliases(store / "current" / "truststore.p12", TS_PASSWORD)
    assert len(aliases) == 5 and any(a.startswith("ehealth-certs-timestamping-001") for a in aliases)
    judges_accept((store / "current" / "tl.xml").read_bytes(), pki, tmp_path, at=None)

    # The other operator commands run in process (each process start decrypts every CA key: seconds).
    withdrawn = _operator(server, "tl", "withdraw", "--cert", str(tsa_pem), "--environment", "production")
    assert withdrawn["sequence_number"] == 3 and withdrawn["withdrawn"] == tsl.fingerprint(tsa)
    code, fourth = _update(server, url, [pin], store)
    assert code == 0 and fourth["sequence_number"] == 3 and fourth["removed"] == [_label(tsa)], fourth
    assert b"<ServiceHistory>" in (store / "current" / "tl.xml").read_bytes()  # withdrawn, still listed

    assert _operator(server, "tl", "publish", "--environment", "production")["sequence_number"] == 4
    listed = _operator(server, "tl", "status", "--environment", "production")
    assert listed["latest"]["sequence_number"] == 4
    assert [s["status"] for s in listed["services"] if s["name"] == "ehealth-certs TSA"] == ["withdrawn"]

    # An older, validly signed list (a replay) is refused and the installed store stays as it was.
    old = tmp_path / "old" / "tl.xml"
    old.parent.mkdir()
    old.write_bytes(seq1)
    before = (store / "current" / "state.json").read_bytes()
    code, replay = _update(server, old.as_uri(), [pin], store)
    assert code == 20 and replay["kind"] == "replay", replay
    assert (store / "current" / "state.json").read_bytes() == before


def _signer_pem(server: LiveServer, env: str, path: Path) -> Path:
    result = CliRunner().invoke(cli_app, ["tl", "signer-cert", "--environment", env], env=server.env)
    assert result.exit_code == 0, result.output
    path.write_text(result.stdout)
    return path


def test_failures_have_distinct_exit_codes_and_change_nothing(server: LiveServer, tmp_path: Path) -> None:
    pin = _signer_pem(server, "production", tmp_path / "pin.pem")
    wrong = _signer_pem(server, "acceptance", tmp_path / "acceptance.pem")
    url = f"{server.url}/tsl/production.xml"

    code, out = _update(server, url, [wrong], tmp_path / "s1")
    assert code == 20 and out["status"] == "failed" and out["kind"] == "untrusted-signer", out
    assert not (tmp_path / "s1" / "current").exists()
    closed = f"http://127.0.0.1:{free_port()}/tsl/production.xml"
    code, out = _update(server, closed, [pin], tmp_path / "s2")
    assert code == 30 and out["kind"] == "unavailable", out
    code, out = _update(server, f"{server.url}/tsl/staging.xml", [pin], tmp_path / "s3")
    assert code == 30 and out["kind"] == "not-found", out
    code, out = _update(server, url, [pin], tmp_path / "s4", "--validation-time", "2031-01-01T00:00:00Z")
    assert code == 20 and out["kind"] == "expired", out
    code, out = _update(server, url, [tmp_path / "missing.pem"], tmp_path / "s5")
    assert code == 40 and out["kind"] == "bad-request", out

    # file:// through the console script; without EHCERTS_TRUSTSTORE_PASSWORD the PKCS#12 has no password.
    folder = tmp_path / "mirror"
    folder.mkdir()
    xml = httpx.get(url).content
    sequence = verify_trusted_list(
        xml, pinned_signers=[x509.load_pem_x509_certificate(pin.read_bytes())], now=datetime.now(UTC)
    ).sequence_number
    (folder / "tl.xml").write_bytes(xml)
    (folder / "tl.sha2").write_bytes(httpx.get(f"{server.url}/tsl/production.sha2").content)
    run = server.cli(
        "truststore", "update", "--url", (folder / "tl.xml").as_uri(), "--signer-cert", str(pin),
        "--dir", str(tmp_path / "s6"), check=False, extra_env={"EHCERTS_TRUSTSTORE_PASSWORD": ""},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr  # type: ignore[attr-defined]
    assert f"installed trusted list {sequence}:" in run.stdout  # type: ignore[attr-defined]
    assert len(_keytool_aliases(tmp_path / "s6" / "current" / "truststore.p12", None)) >= 4

    # A list edited after signing (its .sha2 recomputed to match) fails verification: exit 20.
    tag = b"<TSLSequenceNumber>%d<" % sequence
    forged = replace_once(xml, tag, b"<TSLSequenceNumber>%d<" % (sequence + 1))
    (folder / "tl.xml").write_bytes(forged)
    (folder / "tl.sha2").write_bytes(tsl.sha2_digest_file(forged))
    code, out = _update(server, (folder / "tl.xml").as_uri(), [pin], tmp_path / "s6")
    assert code == 20 and out["kind"] == "bad-signature", out
    assert json.loads((tmp_path / "s6" / "current" / "state.json").read_text())["sequence_number"] == sequence
