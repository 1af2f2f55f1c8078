"""`ehcerts keystore change-password|show`: secrets from the environment, one-line errors, exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from ehealth_certs.cli.common import EXIT_CODES
from ehealth_certs.cli.main import app
from ehealth_certs.errors import ErrorKind
from ehealth_certs.pki.keystore import KeyEntry, Keystore, load_keystore, save_keystore

runner = CliRunner()


@pytest.fixture
def keystore_file(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SSIN=79121430944")])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(7).not_valid_before(now).not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = tmp_path / "SSIN=79121430944 20260101-000000.p12"
    save_keystore(path, Keystore(keys={"authentication": KeyEntry("authentication", key, [cert])}), "old-pw")
    return path


def test_change_password_rewrites_the_store(keystore_file: Path) -> None:
    result = runner.invoke(
        app, ["keystore", "change-password", "--keystore", str(keystore_file)],
        env={"EHCERTS_KEYSTORE_PASSWORD": "old-pw", "EHCERTS_NEW_KEYSTORE_PASSWORD": "new-pw"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_keystore(keystore_file.read_bytes(), "new-pw").authentication().certificate.serial_number == 7


def test_wrong_password_is_one_line_and_keeps_the_file(keystore_file: Path) -> None:
    before = keystore_file.read_bytes()
    result = runner.invoke(
        app, ["keystore", "change-password", "--keystore", str(keystore_file)],
        env={"EHCERTS_KEYSTORE_PASSWORD": "wrong", "EHCERTS_NEW_KEYSTORE_PASSWORD": "new-pw"},
    )  # fmt: skip
    assert result.exit_code == EXIT_CODES[ErrorKind.UNAUTHENTICATED]
    assert result.output.strip().count("\n") == 0 and result.output.startswith("error: ")
    assert keystore_file.read_bytes() == before


def test_missing_secret_without_terminal_is_refused(keystore_file: Path) -> None:
    result = runner.invoke(app, ["keystore", "show", "--keystore", str(keystore_file)], env={})
    assert result.exit_code == EXIT_CODES[ErrorKind.BAD_REQUEST]
    assert "EHCERTS_KEYSTORE_PASSWORD" in result.output


def test_show_lists_entries_as_json(keystore_file: Path) -> None:
    result = runner.invoke(
        app, ["keystore", "show", "--keystore", str(keystore_file), "--json"],
        env={"EHCERTS_KEYSTORE_PASSWORD": "old-pw"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data["keys"]) == ["authentication"]
    assert data["keys"]["authentication"]["certificate"]["serial"] == "7"


def test_missing_file_gives_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["keystore", "show", "--keystore", str(tmp_path / "nope.p12")],
        env={"EHCERTS_KEYSTORE_PASSWORD": "x"},
    )
    assert result.exit_code != 0
    assert result.output.startswith("error: ")
