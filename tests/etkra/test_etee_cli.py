"""`ehcerts seal|unseal` in process: strict by default, --lenient, --report, and the documented exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ehealth_certs.cli.common import EXIT_CODES
from ehealth_certs.cli.etee import EXIT_INVALID, EXIT_MALFORMED, EXIT_NO_KEY, EXIT_NOT_TRUSTED
from ehealth_certs.cli.main import app
from ehealth_certs.environment import Environment
from ehealth_certs.errors import ErrorKind
from ehealth_certs.etkra.depot import normalise_identifier
from ehealth_certs.pki.etk import parse_etk
from tests.conftest import FIXTURES
from tests.ra.helpers import CONTACT, add_doctor, keystore_dir, manager

ALICE, BOB = "79121430944", "69022608813"
AT = "2026-12-01T10:00:00Z"  # the tests' frozen time (the certificates start at 09:00 that day)
ENV = {"EHCERTS_KEYSTORE_PASSWORD": "pw"}

pytestmark = pytest.mark.usefixtures("trust_citizen_ca")
runner = CliRunner()


def _keystore(platform, clock, eid_factory, tmp_path: Path, ssin: str) -> Path:
    add_doctor(platform, ssin)
    person = eid_factory(ssin, tmp=tmp_path)
    outcome = manager(platform, clock).request(
        person.card, keystore_dir=keystore_dir(tmp_path) / ssin, password="pw", contact=CONTACT
    )
    assert outcome.etk_status == "VALID_ACTIVE"
    return outcome.keystore


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=ENV if env is None else env)


def test_seal_and_unseal_exit_codes(platform, clock, eid_factory, tmp_path: Path) -> None:
    alice = _keystore(platform, clock, eid_factory, tmp_path, ALICE)
    bob = _keystore(platform, clock, eid_factory, tmp_path, BOB)
    bob_etk = tmp_path / "bob.etk"
    answer = platform.depot.lookup(Environment.PRODUCTION, normalise_identifier("SSIN", BOB))
    bob_etk.write_bytes(answer.etk)
    clear, sealed, out = tmp_path / "clear.txt", tmp_path / "msg", tmp_path / "out.txt"
    clear.write_bytes(b"for Bob only")

    r = run("seal", "--keystore", str(alice), "--to-etk", str(bob_etk), "--in", str(clear), "--out", str(sealed),
            "--validation-time", AT)  # fmt: skip
    assert r.exit_code == 0, r.output
    message = sealed.read_bytes()

    # strict: the AIA OCSP responder of this in-process platform is not reachable -> UNSURE -> refused
    r = run(
        "unseal",
        "--keystore",
        str(bob),
        "--in",
        str(sealed),
        "--out",
        str(out),
        "--validation-time",
        AT,
        "--report",
    )
    assert r.exit_code == EXIT_NOT_TRUSTED, r.output
    report = json.loads(r.stdout)
    assert report["validation"] == "VALID" and report["trust"] == "UNSURE"
    assert report["recipientAlias"] == str(parse_etk(answer.etk).encryption_certificate.serial_number)
    assert not out.exists()
    # lenient: valid data is written even though trust is not full
    r = run("unseal", "--keystore", str(bob), "--in", str(sealed), "--out", str(out), "--validation-time", AT,
            "--lenient")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == b"for Bob only" and "UNSURE" in r.stderr
    out.unlink()
    # the sender's certificate is expired at the validation time: not trusted at all
    r = run("unseal", "--keystore", str(bob), "--in", str(sealed), "--out", str(out), "--validation-time",
            "2031-01-01T00:00:00Z", "--no-revocation-check", "--report")  # fmt: skip
    assert r.exit_code == EXIT_NOT_TRUSTED and json.loads(r.stdout)["trust"] == "NONE"
    # no key: Alice's keystore cannot open a message for Bob
    r = run(
        "unseal", "--keystore", str(alice), "--in", str(sealed), "--out", str(out), "--validation-time", AT
    )
    assert r.exit_code == EXIT_NO_KEY == EXIT_CODES[ErrorKind.NO_DECRYPTION_KEY]
    # several keystores: the one holding the key opens it
    r = run("unseal", "--keystore", str(alice), "--keystore", str(bob), "--in", str(sealed), "--out", str(out),
            "--validation-time", AT, "--lenient")  # fmt: skip
    assert r.exit_code == 0 and out.read_bytes() == b"for Bob only"
    out.unlink()
    # malformed
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x30\x03\x02\x01\x01not cms")
    r = run("unseal", "--keystore", str(bob), "--in", str(junk), "--out", str(out))
    assert r.exit_code == EXIT_MALFORMED == EXIT_CODES[ErrorKind.MALFORMED_MESSAGE]
    # invalid: the outer signature's last byte flipped; never written, not even with --lenient
    tampered = tmp_path / "tampered"
    tampered.write_bytes(message[:-1] + bytes([message[-1] ^ 1]))
    r = run("unseal", "--keystore", str(bob), "--in", str(tampered), "--out", str(out), "--validation-time", AT,
            "--lenient", "--report")  # fmt: skip
    assert r.exit_code == EXIT_INVALID, r.output
    assert json.loads(r.stdout)["validation"] == "INVALID" and not out.exists()
    # no password and no terminal
    r = run("unseal", "--keystore", str(bob), "--in", str(sealed), "--out", str(out), env={})
    assert r.exit_code == EXIT_CODES[ErrorKind.BAD_REQUEST] and "EHCERTS_KEYSTORE_PASSWORD" in r.output


def test_seal_refuses_an_etk_that_does_not_chain_to_a_trusted_ca(
    platform, clock, eid_factory, tmp_path
) -> None:
    alice = _keystore(platform, clock, eid_factory, tmp_path, ALICE)
    clear = tmp_path / "clear.txt"
    clear.write_bytes(b"x")
    r = run("seal", "--keystore", str(alice), "--to-etk", str(FIXTURES / "bob" / "bobs_public_key.etk"),
            "--in", str(clear), "--out", str(tmp_path / "m"), "--validation-time", AT)  # fmt: skip
    assert r.exit_code == EXIT_CODES[ErrorKind.UNTRUSTED_SIGNER]
    assert "not acceptable" in r.output and not (tmp_path / "m").exists()
    r = run("seal", "--keystore", str(alice), "--in", str(clear), "--out", str(tmp_path / "m"))
    assert r.exit_code == EXIT_CODES[ErrorKind.BAD_REQUEST]
