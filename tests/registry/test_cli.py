"""Operator commands (``ehcerts registry ...``, ``ehcerts admin mail ...``) on the test platform's database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ehealth_certs.cli.main import app
from ehealth_certs.config import Settings
from ehealth_certs.platform import Platform
from tests.conftest import PASSPHRASE
from tests.notify.smtp_server import SmtpServer
from tests.ra.helpers import http_client
from tests.registry.conftest import wire
from tests.registry.helpers import subscribe_confirmed

ALICE = "alice@example.be"


def test_operator_commands_change_the_registry_and_mail_subscribers(
    platform: Platform, settings: Settings, smtp: SmtpServer, tmp_path: Path
) -> None:
    wire(platform, smtp)
    subscribe_confirmed(http_client(platform), platform, smtp, ALICE)
    smtp.recorder.received.clear()
    env = {
        "EHCERTS_DATA_DIR": str(settings.data_dir),
        "EHCERTS_DATABASE_URL": settings.resolved_database_url,
        "EHCERTS_CA_PASSPHRASE": PASSPHRASE,
        "EHCERTS_PUBLIC_BASE_URL": settings.base_url,
        "EHCERTS_SMTP_HOST": "127.0.0.1",
        "EHCERTS_SMTP_PORT": str(smtp.port),
        "EHCERTS_OPERATOR": "operator:bob",
    }
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, f"{args}: {result.output}"
        return result.output

    def run_json(*args: str) -> Any:
        return json.loads(run(*args, "--json"))

    docs = tmp_path / "docs"
    (docs / "xsd").mkdir(parents=True)
    (docs / "xsd" / "ab-1_0.xsd").write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>')
    run(
        "registry",
        "add",
        "addressbook",
        "--title",
        "Addressbook",
        "--description",
        "Who works where",
        "--doc-link",
        "https://docs.example.be/addressbook",
    )
    run(
        "registry",
        "add-version",
        "addressbook",
        "1.0",
        "--url",
        "production=https://ab.example.be/v1",
        "--url",
        "acceptance=https://ab-acpt.example.be/v1",
        "--documents-dir",
        str(docs),
    )
    run(
        "registry",
        "set-url",
        "addressbook",
        "1.0",
        "--environment",
        "production",
        "--url",
        "https://ab.example.be/v1.1",
    )
    run("registry", "deprecate", "addressbook", "1.0", "--note", "2.0 comes in May")

    listed = {r["name"]: r for r in run_json("registry", "list")}
    assert listed["addressbook"]["versions"] == [{"version": "1.0", "status": "deprecated"}]
    assert "etkdepot" in listed
    shown = run_json("registry", "show", "addressbook")
    assert shown["owner"] == "operator:bob"
    assert shown["documentation"] == ["https://docs.example.be/addressbook"]
    (v,) = shown["versions"]
    assert v["endpoints"] == {
        "acceptance": {"rest": "https://ab-acpt.example.be/v1"},
        "production": {"rest": "https://ab.example.be/v1.1"},
    }
    assert [d["path"] for d in v["documents"]] == ["xsd/ab-1_0.xsd"]
    assert "version 1.0: deprecated" in run("registry", "show", "addressbook")

    run("registry", "show", "nope", code=5)  # not-found
    run("registry", "set-status", "addressbook", "1.0", "bogus", code=3)  # bad-request
    run("registry", "set-status", "addressbook", "1.0", "draft", code=6)  # invalid-transition
    run("registry", "add-version", "addressbook", "2.0", "--url", "production=ftp://x", code=3)
    assert [(r["email"], r["status"]) for r in run_json("registry", "subscribers")] == [(ALICE, "confirmed")]

    pending = run_json("admin", "mail", "list", "--status", "pending")
    assert [m["recipient"] for m in pending] == [ALICE] * 3
    assert run_json("admin", "mail", "deliver")["sent"] == 3
    subjects = [r.message["Subject"] for r in smtp.recorder.to(ALICE)]
    assert subjects == [
        "[ehealth-certs] addressbook 1.0: new version",
        "[ehealth-certs] addressbook 1.0: production URL changed",
        "[ehealth-certs] addressbook 1.0: deprecated",
    ]
    assert "2.0 comes in May" in smtp.recorder.to(ALICE)[2].body
    assert run_json("admin", "mail", "deliver")["attempted"] == 0
    assert "outbox empty" in run("admin", "mail", "list", "--status", "failed")
