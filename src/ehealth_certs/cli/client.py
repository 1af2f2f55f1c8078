"""Certificate Manager commands: cert request|renew|revoke|status, keystore change-password|show."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509

from ehealth_certs.cli.common import emit, handle_errors, secret
from ehealth_certs.client.eid import FileEid
from ehealth_certs.client.http import PlatformClient
from ehealth_certs.client.manager import CertificateManager, RequestOutcome, is_placeholder
from ehealth_certs.clock import SystemClock
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.keys import public_key_identifier
from ehealth_certs.pki.keystore import change_password, load_keystore

cert = typer.Typer(help="Obtain, renew, revoke and inspect eHealth certificates.", no_args_is_help=True)
keystore = typer.Typer(help="The eHealth keystore (PKCS#12).", no_args_is_help=True)

Server = Annotated[str, typer.Option("--server", envvar="EHCERTS_SERVER", help="Platform URL.")]
Env = Annotated[Environment, typer.Option("--environment", help="acceptance or production.")]
Eid = Annotated[Path, typer.Option("--eid", help="eID file (test card); PIN from EHCERTS_EID_PIN.")]
KeystoreFile = Annotated[Path, typer.Option("--keystore", help="Keystore file (.p12).")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Accept = Annotated[bool, typer.Option("--accept-contract", help="Accept the contract without asking.")]
Wait = Annotated[float, typer.Option("--wait", help="Seconds to wait for delivery (poll every 10 s).")]


def register(app: typer.Typer) -> None:
    app.add_typer(cert, name="cert")
    app.add_typer(keystore, name="keystore")


def _confirm(accept: bool, as_json: bool) -> Any:
    def confirm(contract: dict[str, Any]) -> bool:
        out = sys.stderr if as_json else sys.stdout
        print("=" * 78, file=out)
        print(f"Contract for {contract['dn']}", file=out)
        for lang in ("en", "fr", "nl"):
            print(f"[{lang}] {contract['text'][lang]}", file=out)
        print("=" * 78, file=out)
        if accept:
            return True
        if not sys.stdin.isatty():
            raise DomainError(ErrorKind.FORBIDDEN, "non-interactive run: pass --accept-contract to accept it")
        return typer.confirm("Do you accept this contract?", default=False)

    return confirm


def _manager(
    server: str, environment: Environment, accept: bool, as_json: bool, wait: float
) -> CertificateManager:
    return CertificateManager(
        client=PlatformClient(server, environment),
        clock=SystemClock(),
        confirm=_confirm(accept, as_json),
        progress=lambda msg: typer.echo(msg, err=True),
        sleep=time.sleep,
        max_wait=wait,
    )


def _card(eid: Path) -> FileEid:
    return FileEid.open(eid, secret("EHCERTS_EID_PIN", "eID PIN"))


def _outcome(outcome: RequestOutcome, as_json: bool) -> None:
    data = {
        "keystore": str(outcome.keystore),
        "publicKeyIdentifier": outcome.public_key_identifier,
        "automaticallyValidated": outcome.automatically_validated,
        "delivered": outcome.delivered,
        "replacesCertificate": outcome.replaces_certificate,
        "notAfter": outcome.certificate.not_valid_after_utc.isoformat() if outcome.certificate else None,
        "etkSerial": outcome.etk_serial,
        "etkStatus": outcome.etk_status,
    }
    if outcome.delivered:
        human = f"certificate delivered; keystore written to {outcome.keystore}"
        if outcome.etk_serial:
            human += f"; ETK {outcome.etk_serial} {outcome.etk_status}"
    else:
        human = (
            f"request {outcome.public_key_identifier} waits for an operator; keystore (key only) at "
            f"{outcome.keystore}; finish later with `ehcerts cert status --keystore ...`"
        )
    emit(as_json, data, human)


def _organization(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    id_type, _, number = value.partition("=")
    if not id_type or not number:
        raise DomainError(ErrorKind.BAD_REQUEST, "--organization must be TYPE=ID, e.g. CBE=0809394427")
    return id_type.upper(), number


@cert.command("request")
@handle_errors
def request(
    server: Server,
    eid: Eid,
    email: Annotated[str, typer.Option(help="Private contact e-mail (ContactData).")],
    phone: Annotated[str, typer.Option(help="Private contact phone (ContactData).")] = "",
    environment: Env = Environment.PRODUCTION,
    keystore_dir: Annotated[Path, typer.Option(help="Folder for the new keystore.")] = Path("."),
    organization: Annotated[str | None, typer.Option(help="TYPE=ID of an organisation.")] = None,
    application_id: Annotated[str | None, typer.Option(help="ApplicationId (organisations).")] = None,
    project: Annotated[str | None, typer.Option(help="Acceptance project name.")] = None,
    accept_contract: Accept = False,
    wait: Wait = 60.0,
    as_json: Json = False,
) -> None:
    """Request a new certificate: local key, contract, eID signature, keystore."""
    card = _card(eid)
    password = secret("EHCERTS_KEYSTORE_PASSWORD", "New keystore password", confirm=True)
    manager = _manager(server, environment, accept_contract, as_json, wait)
    with manager.client:
        outcome = manager.request(
            card, keystore_dir=keystore_dir, password=password,
            contact={"emailPrivate": email, "phonePrivate": phone},
            organization=_organization(organization), application_id=application_id, project=project,
        )  # fmt: skip
    _outcome(outcome, as_json)


@cert.command("renew")
@handle_errors
def renew(
    server: Server,
    eid: Eid,
    keystore_file: KeystoreFile,
    email: Annotated[str, typer.Option(help="Private contact e-mail (ContactData).")],
    phone: Annotated[str, typer.Option(help="Private contact phone (ContactData).")] = "",
    environment: Env = Environment.PRODUCTION,
    keystore_dir: Annotated[Path | None, typer.Option(help="Folder for the new keystore.")] = None,
    project: Annotated[str | None, typer.Option(help="Acceptance project name.")] = None,
    accept_contract: Accept = False,
    wait: Wait = 60.0,
    as_json: Json = False,
) -> None:
    """Renew inside the replacement period: a new keystore; the old one is kept untouched."""
    card = _card(eid)
    password = secret("EHCERTS_KEYSTORE_PASSWORD", "Keystore password")
    manager = _manager(server, environment, accept_contract, as_json, wait)
    with manager.client:
        outcome = manager.renew(
            card, keystore=keystore_file, password=password, contact={"emailPrivate": email, "phonePrivate": phone},
            project=project, keystore_dir=keystore_dir,
        )  # fmt: skip
    _outcome(outcome, as_json)


@cert.command("revoke")
@handle_errors
def revoke(
    server: Server,
    eid: Eid,
    reason: Annotated[
        str, typer.Option(help="keyCompromise, affiliationChanged, superseded, cessationOfOperation")
    ],
    keystore_file: Annotated[
        Path | None, typer.Option("--keystore", help="Keystore of the certificate.")
    ] = None,
    public_key_identifier_hex: Annotated[
        str | None, typer.Option("--public-key-identifier", help="Hex SKI, instead of --keystore.")
    ] = None,
    environment: Env = Environment.PRODUCTION,
    accept_contract: Accept = False,
    as_json: Json = False,
) -> None:
    """Revoke a certificate (and its ETKs), signed with the eID Signature key."""
    if keystore_file is not None:
        store = load_keystore(
            keystore_file.read_bytes(), secret("EHCERTS_KEYSTORE_PASSWORD", "Keystore password")
        )
        public_key_identifier_hex = public_key_identifier(
            store.authentication().private_key.public_key()
        ).hex()
    if not public_key_identifier_hex:
        raise DomainError(ErrorKind.BAD_REQUEST, "give --keystore or --public-key-identifier")
    card = _card(eid)
    manager = _manager(server, environment, accept_contract, as_json, 0)
    with manager.client:
        manager.revoke(card, public_key_identifier_hex=public_key_identifier_hex, reason=reason)
    emit(as_json, {"revoked": public_key_identifier_hex}, f"revoked {public_key_identifier_hex}")


@cert.command("status")
@handle_errors
def status(
    server: Server,
    eid: Annotated[Path | None, typer.Option("--eid", help="eID file: list all your certificates.")] = None,
    keystore_file: Annotated[
        Path | None, typer.Option("--keystore", help="Complete/inspect this keystore.")
    ] = None,
    environment: Env = Environment.PRODUCTION,
    wait: Wait = 0.0,
    as_json: Json = False,
) -> None:
    """Show certificate statuses; with --keystore, also finish a keystore whose certificate was pending."""
    manager = _manager(server, environment, False, as_json, wait)
    out: dict[str, Any] = {}
    lines: list[str] = []
    with manager.client:
        if keystore_file is not None:
            password = secret("EHCERTS_KEYSTORE_PASSWORD", "Keystore password")
            delivered = manager.complete(keystore_file, password)
            out["keystore"] = {"file": str(keystore_file), "delivered": delivered is not None}
            lines.append(
                f"{keystore_file}: "
                + (
                    f"certificate valid until {delivered.not_valid_after_utc:%Y-%m-%d}"
                    if delivered
                    else "pending"
                )
            )
        if eid is not None:
            infos = manager.status(_card(eid))
            out["certificates"] = infos
            for info in infos:
                ident = info["certificateEntity"]["identifier"]
                lines.append(
                    f"{info['publicKeyIdentifier']}  {ident['type']}={ident['value']}  "
                    f"{info['authenticationCertificateStatus']:12} ETK {info['etkStatus']:19} "
                    f"replaceable={info['replaceable']}"
                )
    if keystore_file is None and eid is None:
        raise DomainError(ErrorKind.BAD_REQUEST, "give --eid and/or --keystore")
    emit(as_json, out, "\n".join(lines) or "no certificates")


@keystore.command("change-password")
@handle_errors
def keystore_change_password(keystore_file: KeystoreFile) -> None:
    """Re-encrypt the keystore under a new password (atomic; the old file survives any error).

    Passwords from EHCERTS_KEYSTORE_PASSWORD and EHCERTS_NEW_KEYSTORE_PASSWORD, or prompts.
    """
    old = secret("EHCERTS_KEYSTORE_PASSWORD", "Current keystore password")
    new = secret("EHCERTS_NEW_KEYSTORE_PASSWORD", "New keystore password", confirm=True)
    change_password(keystore_file, old, new)
    typer.echo(f"password of {keystore_file} changed")


def _describe(c: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": c.subject.rfc4514_string(),
        "issuer": c.issuer.rfc4514_string(),
        "serial": str(c.serial_number),
        "notBefore": c.not_valid_before_utc.isoformat(),
        "notAfter": c.not_valid_after_utc.isoformat(),
    }


@keystore.command("show")
@handle_errors
def keystore_show(keystore_file: KeystoreFile, as_json: Json = False) -> None:
    """List the keystore's entries (never the keys)."""
    store = load_keystore(
        keystore_file.read_bytes(), secret("EHCERTS_KEYSTORE_PASSWORD", "Keystore password")
    )
    data = {
        "keys": {
            alias: {
                "certificate": _describe(e.certificate),
                "chain": len(e.chain),
                "pending": is_placeholder(e.certificate),
            }
            for alias, e in store.keys.items()
        },
        "trusted": {alias: _describe(c) for alias, c in store.trusted.items()},
    }
    lines = [f"key     {alias:40} {d['certificate']['subject']} (until {d['certificate']['notAfter'][:10]})"
             + ("  [pending]" if d["pending"] else "") for alias, d in data["keys"].items()]  # fmt: skip
    lines += [f"trusted {alias}" for alias in data["trusted"]]
    emit(as_json, data, "\n".join(lines))
