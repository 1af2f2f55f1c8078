"""End-to-end encryption commands: ``etk get``, ``seal``, ``unseal`` (see docs/etee.md).

Keystore passwords come from EHCERTS_KEYSTORE_PASSWORD or a prompt (one password for all the keystores
given). ``unseal`` is strict by default: it writes the content only when the data is valid AND the sender is
fully trusted; ``--lenient`` also writes it when only the trust is incomplete. Exit codes: see EXIT_* below.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography import x509

from ehealth_certs.cli.common import EXIT_CODES, emit, handle_errors, secret
from ehealth_certs.client.http import PlatformClient
from ehealth_certs.client.revocation import ocsp_checker
from ehealth_certs.clock import SystemClock
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import cms
from ehealth_certs.pki.etk import Etk, parse_etk, validate_etk
from ehealth_certs.pki.keystore import Keystore, load_keystore
from ehealth_certs.pki.seal import TrustStatus, UnsealResult, ValidationStatus, seal, unseal

# Dedicated exit codes of unseal (documented in docs/etee.md); other errors use cli/common.py EXIT_CODES.
EXIT_MALFORMED = EXIT_CODES[ErrorKind.MALFORMED_MESSAGE]  # 10: not a sealed message (or a broken one)
EXIT_INVALID = 11  # a signature or the encryption is invalid: the content is never written
EXIT_NOT_TRUSTED = 12  # data valid but the sender is not fully trusted (strict mode)
EXIT_NO_KEY = EXIT_CODES[ErrorKind.NO_DECRYPTION_KEY]  # 13: no keystore holds a key for this message
EXIT_SEVERAL_MATCHES = 14  # etk get: several ETKs match (ApplicationIDs), none was written (2 is usage)

etk_app = typer.Typer(help="Encryption tokens (ETK) from the depot.", no_args_is_help=True)

Server = Annotated[str, typer.Option("--server", envvar="EHCERTS_SERVER", help="Platform URL.")]
Env = Annotated[Environment, typer.Option("--environment", help="acceptance or production.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def register(app: typer.Typer) -> None:
    app.add_typer(etk_app, name="etk")
    app.command("seal")(seal_command)
    app.command("unseal")(unseal_command)


def _load_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, f"{path} is not a PEM or DER certificate") from exc


def _keystores(paths: list[Path]) -> list[Keystore]:
    if not paths:
        raise DomainError(ErrorKind.BAD_REQUEST, "give at least one --keystore")
    password = secret("EHCERTS_KEYSTORE_PASSWORD", "Keystore password")
    return [load_keystore(p.read_bytes(), password) for p in paths]


def _at(validation_time: str | None) -> datetime:
    if validation_time is None:
        return SystemClock().now()
    try:
        at = datetime.fromisoformat(validation_time.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"--validation-time {validation_time!r} is not ISO 8601"
        ) from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


ValidationTime = Annotated[
    str | None,
    typer.Option("--validation-time", help="Check validity as of this ISO 8601 time (default: now)."),
]


def _describe_etk(etk: Etk) -> dict[str, Any]:
    enc = etk.encryption_certificate
    return {
        "subject": enc.subject.rfc4514_string(),
        "serial": str(enc.serial_number),
        "notBefore": enc.not_valid_before_utc.isoformat(),
        "notAfter": enc.not_valid_after_utc.isoformat(),
        "ra": etk.ra_certificate.subject.rfc4514_string(),
    }


def _fetch(client: PlatformClient, id_type: str, value: str, application_id: str | None) -> dict[str, Any]:
    return client.get_etk(id_type.upper(), value, application_id)


def _parse_to(value: str) -> tuple[str, str, str | None]:
    """``TYPE=VALUE`` or ``TYPE=VALUE,APPLICATIONID`` (the eHealth keystore naming)."""
    id_type, sep, rest = value.partition("=")
    number, _, app = rest.partition(",")
    if not sep or not id_type.strip() or not number.strip():
        raise DomainError(ErrorKind.BAD_REQUEST, f"--to {value!r}: expected TYPE=VALUE[,APPLICATIONID]")
    return id_type.strip().upper(), number.strip(), app.strip() or None


# -- etk get ----------------------------------------------------------------------------------------
@etk_app.command("get")
@handle_errors
def etk_get(
    server: Server,
    id_type: Annotated[str, typer.Option("--type", help="Identifier type, e.g. SSIN, CBE, NIHII-HOSPITAL.")],
    value: Annotated[str, typer.Option("--value", help="Identifier value (zero padding is added).")],
    application_id: Annotated[str | None, typer.Option("--application-id", help="ApplicationID.")] = None,
    environment: Env = Environment.PRODUCTION,
    out: Annotated[Path | None, typer.Option("--out", help="Write the ETK (DER) here.")] = None,
    as_json: Json = False,
) -> None:
    """Look an ETK up in the depot. Several matches (ApplicationIDs) are listed; pick one with --application-id."""
    with PlatformClient(server, environment) as client:
        answer = _fetch(client, id_type, value, application_id)
    if "matchingEtks" in answer:
        matches = answer["matchingEtks"]
        lines = ["several ETKs match; choose one with --application-id:"] + [
            f"  {m['type']}={m['value']}" + (f",{m['applicationId']}" if m.get("applicationId") else "")
            for m in matches
        ]
        emit(as_json, {"matchingEtks": matches}, "\n".join(lines))
        raise typer.Exit(EXIT_SEVERAL_MATCHES)
    import base64

    der = base64.b64decode(answer["etk"])
    etk = parse_etk(der)
    if out is not None:
        out.write_bytes(der)
    data = {
        "identifier": answer["identifier"],
        "etk": _describe_etk(etk),
        "written": str(out) if out else None,
    }
    emit(as_json, data, f"ETK of {etk.encryption_certificate.subject.rfc4514_string()} serial "
         f"{etk.encryption_certificate.serial_number}" + (f" written to {out}" if out else ""))  # fmt: skip


# -- seal -------------------------------------------------------------------------------------------
def _checked_etk(etk: Etk, trusted: list[x509.Certificate], now: datetime, what: str) -> Etk:
    problems = validate_etk(etk, trusted_cas=trusted, now=now)
    ra_path = cms.check_path(etk.ra_certificate, etk.ca_chain, trusted, now, target="ra")
    problems += [v for v in ra_path.violations if v.code != cms.ViolationCode.NOT_TIME_VALID]
    if problems:
        reasons = "; ".join(f"{v.target}: {v.detail}" for v in problems[:3])
        raise DomainError(ErrorKind.UNTRUSTED_SIGNER, f"the ETK of {what} is not acceptable: {reasons}")
    return etk


@handle_errors
def seal_command(
    keystore: Annotated[list[Path], typer.Option("--keystore", help="Your keystore (the sender).")],
    input_file: Annotated[Path, typer.Option("--in", help="The content to seal.")],
    output_file: Annotated[Path, typer.Option("--out", help="Where to write the sealed message.")],
    to: Annotated[
        list[str] | None, typer.Option("--to", help="Recipient TYPE=VALUE[,APPID] (depot).")
    ] = None,
    to_etk: Annotated[list[Path] | None, typer.Option("--to-etk", help="Recipient ETK file (DER).")] = None,
    server: Annotated[
        str | None, typer.Option("--server", envvar="EHCERTS_SERVER", help="Platform URL.")
    ] = None,
    environment: Env = Environment.PRODUCTION,
    trusted_ca: Annotated[
        list[Path] | None, typer.Option("--trusted-ca", help="CA that recipient ETKs must chain to.")
    ] = None,
    validation_time: ValidationTime = None,
) -> None:
    """Seal a file for one or more recipients (ETK from the depot or from files), signed with your keystore."""
    if not to and not to_etk:
        raise DomainError(ErrorKind.BAD_REQUEST, "give at least one --to or --to-etk")
    store = _keystores(keystore[:1])[0]
    sender = store.authentication()
    now = _at(validation_time)
    trusted = [*store.trusted.values(), *(_load_cert(p) for p in trusted_ca or [])]
    etks: list[Etk] = []
    for path in to_etk or []:
        etks.append(_checked_etk(parse_etk(path.read_bytes()), trusted, now, str(path)))
    if to:
        if not server:
            raise DomainError(ErrorKind.BAD_REQUEST, "--to needs --server (the ETK depot)")
        import base64

        with PlatformClient(server, environment) as client:
            for recipient in to:
                id_type, value, app = _parse_to(recipient)
                answer = _fetch(client, id_type, value, app)
                if "matchingEtks" in answer:
                    apps = ", ".join(str(m.get("applicationId")) for m in answer["matchingEtks"])
                    raise DomainError(
                        ErrorKind.CONFLICT,
                        f"{recipient}: several ETKs match (ApplicationIDs {apps}); add ,APPID",
                    )
                etks.append(_checked_etk(parse_etk(base64.b64decode(answer["etk"])), trusted, now, recipient))
    message = seal(input_file.read_bytes(), sender.private_key, sender.chain, etks, now)
    output_file.write_bytes(message)
    typer.echo(f"sealed {input_file} for {len(etks)} recipient(s) into {output_file}", err=True)


# -- unseal -----------------------------------------------------------------------------------------
def _report(result: UnsealResult) -> dict[str, Any]:
    return {
        **result.report.to_json(),
        "sender": result.sender.subject.rfc4514_string(),
        "recipientAlias": result.recipient_alias,
    }


@handle_errors
def unseal_command(
    keystore: Annotated[list[Path], typer.Option("--keystore", help="Keystore(s) with decryption keys.")],
    input_file: Annotated[Path, typer.Option("--in", help="The sealed message.")],
    output_file: Annotated[Path, typer.Option("--out", help="Where to write the content.")],
    trusted_ca: Annotated[
        list[Path] | None, typer.Option("--trusted-ca", help="Trusted CA (PEM or DER).")
    ] = None,
    validation_time: ValidationTime = None,
    report: Annotated[bool, typer.Option("--report", help="Print the security report as JSON.")] = False,
    lenient: Annotated[
        bool,
        typer.Option(
            "--lenient", help="Also write the content when the data is valid but trust is not full."
        ),
    ] = False,
    no_revocation_check: Annotated[
        bool, typer.Option("--no-revocation-check", help="Do not ask OCSP (trust is then at best UNSURE).")
    ] = False,
) -> None:
    """Open a sealed message. Strict by default: nothing is written unless data is valid and trust is FULL."""
    # malformed message and no key are DomainErrors: @handle_errors maps them (EXIT_CODES)
    _unseal(keystore, input_file, output_file, trusted_ca or [], validation_time, report, lenient,
            no_revocation_check)  # fmt: skip


def _unseal(
    keystore: list[Path], input_file: Path, output_file: Path, trusted_ca: list[Path], validation_time: str | None,
    report: bool, lenient: bool, no_revocation_check: bool,
) -> None:  # fmt: skip
    now = _at(validation_time)
    stores = _keystores(keystore)
    trusted = [c for s in stores for c in s.trusted.values()] + [_load_cert(p) for p in trusted_ca]
    with httpx.Client(timeout=5.0) as http:
        checker = None if no_revocation_check else ocsp_checker(now, http=http)
        result = unseal(
            input_file.read_bytes(), stores, trusted_cas=trusted, now=now, revocation_checker=checker
        )
    r = result.report
    if report:
        typer.echo(json.dumps(_report(result), indent=2, sort_keys=True))
    if r.validation is ValidationStatus.INVALID:
        _explain("the message data is INVALID; nothing was written", result)
        raise typer.Exit(EXIT_INVALID)
    if r.trust is not TrustStatus.FULL and not lenient:
        _explain(
            f"the sender is not fully trusted (trust {r.trust}); nothing was written (--lenient to accept)",
            result,
        )
        raise typer.Exit(EXIT_NOT_TRUSTED)
    output_file.write_bytes(result.content)
    if r.trust is not TrustStatus.FULL:
        _explain(f"warning: trust is {r.trust}; content written because of --lenient", result)
    if not report:
        emit(
            False, None, f"unsealed message from {result.sender.subject.rfc4514_string()} into {output_file}"
        )


def _explain(headline: str, result: UnsealResult) -> None:
    typer.echo(headline, err=True)
    r = result.report
    for v in [*r.outer_signature, *r.encryption, *r.inner_signature, *r.sender_certificate][:5]:
        typer.echo(f"  {v.target}: {v.code} {v.detail}", err=True)
