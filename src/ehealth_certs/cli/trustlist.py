"""Trusted lists: ``ehcerts tl ...`` (operators, on the server's data directory) and ``ehcerts truststore update``
(relying parties, anywhere: cron-friendly, fail-closed).

``ehcerts truststore update`` exit codes (also in ``docs/trusted-lists.md``):

====  =========================================================================================================
0     a newer list was verified and installed (``current`` changed: reload the application using the store)
10    unchanged: the installed list is still the published one and before its NextUpdate
20    verification failed: signature, pin, schema, dates, replay (sequence not higher), .sha2 mismatch, size
30    fetch failed: network error, HTTP error, missing file (and an I/O error while installing)
40    local problem: bad options or signer file, unreadable installed state, another update running
2     usage error (Typer)
====  =========================================================================================================

On every non-zero code the installed truststore is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ehealth_certs.cli.common import apply_data_dir, emit, handle_errors, operator_name
from ehealth_certs.clock import SystemClock
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.tsl import fingerprint, format_time

tl = typer.Typer(help="Publish the platform's signed trusted lists (operators).", no_args_is_help=True)
truststore = typer.Typer(
    help="Keep a local truststore in sync with a signed trusted list.", no_args_is_help=True
)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="EHCERTS_DATA_DIR", help="Data directory (database, PKI).")
]
Env = Annotated[Environment, typer.Option("--environment", help="acceptance or production.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Operator = Annotated[str | None, typer.Option("--operator", help="Operator name for the audit log.")]

EXIT_INSTALLED = 0
EXIT_UNCHANGED = 10
EXIT_VERIFICATION = 20
EXIT_FETCH = 30
EXIT_LOCAL = 40
_VERIFICATION_KINDS = frozenset(
    {
        ErrorKind.BAD_SIGNATURE,
        ErrorKind.UNTRUSTED_SIGNER,
        ErrorKind.MALFORMED_MESSAGE,
        ErrorKind.EXPIRED,
        ErrorKind.REPLAY,
        ErrorKind.PAYLOAD_TOO_LARGE,
    }
)
_FETCH_KINDS = frozenset({ErrorKind.UNAVAILABLE, ErrorKind.NOT_FOUND})
TRUSTSTORE_PASSWORD_ENV = "EHCERTS_TRUSTSTORE_PASSWORD"  # noqa: S105 (a variable name, not a secret)


def register(app: typer.Typer) -> None:
    app.add_typer(tl, name="tl")
    app.add_typer(truststore, name="truststore")


def truststore_exit_code(kind: ErrorKind) -> int:
    """The documented exit code of ``truststore update`` for a failure of this kind."""
    if kind in _VERIFICATION_KINDS:
        return EXIT_VERIFICATION
    if kind in _FETCH_KINDS:
        return EXIT_FETCH
    return EXIT_LOCAL


@contextlib.contextmanager
def _platform(data_dir: Path | None) -> Iterator[Any]:
    from ehealth_certs.platform import Platform

    apply_data_dir(data_dir)
    platform = Platform.start(Settings(), create_pki=False)
    try:
        yield platform
    finally:
        platform.close()


def _read_certificates(path: Path) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, f"cannot read {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, f"{path} holds no PEM or DER certificate") from exc


def _one_certificate(path: Path) -> x509.Certificate:
    certs = _read_certificates(path)
    if len(certs) != 1:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"{path} must hold exactly one certificate, not {len(certs)}"
        )
    return certs[0]


def _publication_out(publication: Any, base_url: str) -> dict[str, Any]:
    from ehealth_certs.trustlist.service import list_url, sha2_url

    return {
        "environment": publication.environment.value,
        "sequence_number": publication.sequence_number,
        "issue_time": format_time(publication.issue_time),
        "next_update": format_time(publication.next_update),
        "sha256": publication.sha256,
        "url": list_url(base_url, publication.environment),
        "sha2_url": sha2_url(base_url, publication.environment),
    }


def _human(out: dict[str, Any]) -> str:
    return (
        f"published the {out['environment']} trusted list {out['sequence_number']} "
        f"(next update {out['next_update']}): {out['url']}"
    )


# -- operators --------------------------------------------------------------------------------------
@tl.command("publish")
@handle_errors
def publish(
    environment: Annotated[
        Environment | None, typer.Option("--environment", help="Only this environment (default: both).")
    ] = None,
    data_dir: DataDir = None,
    operator: Operator = None,
    as_json: Json = False,
) -> None:
    """Sign and publish a new list now (sequence number + 1)."""
    with _platform(data_dir) as platform:
        envs = [environment] if environment else list(platform.rt.environments)
        outs = [
            _publication_out(
                platform.trustlists.publish(e, actor=operator_name(operator)), platform.rt.settings.base_url
            )
            for e in envs
        ]
        emit(as_json, outs if environment is None else outs[0], "\n".join(_human(o) for o in outs))


@tl.command("add-service")
@handle_errors
def add_service(
    cert: Annotated[Path, typer.Option("--cert", help="Certificate to list (PEM or DER).")],
    service_type: Annotated[
        str, typer.Option("--type", help="Service type URI, e.g. http://uri.etsi.org/TrstSvc/Svctype/TSA")
    ],
    environment: Env,
    name: Annotated[
        str | None, typer.Option("--name", help="Service name (default: the certificate CN).")
    ] = None,
    data_dir: DataDir = None,
    operator: Operator = None,
    as_json: Json = False,
) -> None:
    """List an extra certificate (TLS server, timestamping authority, ...) as granted, and republish."""
    certificate = _one_certificate(cert)
    with _platform(data_dir) as platform:
        publication = platform.trustlists.add_service(
            environment, certificate, service_type, name=name, actor=operator_name(operator)
        )
        out = _publication_out(publication, platform.rt.settings.base_url)
        out["added"] = f"{certificate.subject.rfc4514_string()} sha256:{fingerprint(certificate)}"
        emit(as_json, out, f"listed {out['added']}\n{_human(out)}")


@tl.command("withdraw")
@handle_errors
def withdraw(
    environment: Env,
    fingerprint_: Annotated[
        str | None, typer.Option("--fingerprint", help="SHA-256 fingerprint of the listed certificate.")
    ] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="The listed certificate (PEM or DER).")] = None,
    data_dir: DataDir = None,
    operator: Operator = None,
    as_json: Json = False,
) -> None:
    """Withdraw a listed service (it stays listed as withdrawn, with its history) and republish."""
    if (fingerprint_ is None) == (cert is None):
        raise DomainError(ErrorKind.BAD_REQUEST, "give exactly one of --fingerprint or --cert")
    fp = fingerprint(_one_certificate(cert)) if cert is not None else str(fingerprint_)
    with _platform(data_dir) as platform:
        publication = platform.trustlists.withdraw(environment, fp, actor=operator_name(operator))
        out = _publication_out(publication, platform.rt.settings.base_url)
        out["withdrawn"] = fp
        emit(as_json, out, f"withdrew sha256:{fp}\n{_human(out)}")


@tl.command("signer-cert")
@handle_errors
def signer_cert(environment: Env, data_dir: DataDir = None) -> None:
    """Print the list signer certificate (PEM): the pin for ``ehcerts truststore update --signer-cert``."""
    # Read from the PKI folder directly: printing a public certificate needs neither the CA passphrase
    # nor the database.
    apply_data_dir(data_dir)
    path = Settings().pki_dir / environment.value / "tsl.crt.pem"
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        raise DomainError(
            ErrorKind.CONFIGURATION, f"no {environment} PKI in {path.parent}: run `ehcerts init`"
        ) from exc
    typer.echo(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"), nl=False)


@tl.command("status")
@handle_errors
def status(environment: Env, data_dir: DataDir = None, as_json: Json = False) -> None:
    """The latest published list and the services the next one would name."""
    with _platform(data_dir) as platform:
        latest = platform.trustlists.latest(environment)
        services = platform.trustlists.services(environment)
        out: dict[str, Any] = {
            "latest": _publication_out(latest, platform.rt.settings.base_url) if latest else None,
            "services": [
                {
                    "name": s.name,
                    "type": s.service_type,
                    "status": s.status.rsplit("/", 1)[-1],
                    "since": format_time(s.status_since),
                    "sha256": fingerprint(s.certificate),
                }
                for s in services
            ],
        }
        lines = [
            f"latest: {latest.sequence_number} issued {format_time(latest.issue_time)}, "
            f"next update {format_time(latest.next_update)}"
            if latest
            else "latest: none published"
        ]
        lines += [f"  {s['status']:10} {s['name']}  sha256:{s['sha256']}" for s in out["services"]]
        emit(as_json, out, "\n".join(lines))


# -- relying parties --------------------------------------------------------------------------------
def _validation_time(value: str | None) -> datetime:
    if value is None:
        return SystemClock().now()
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"--validation-time {value!r} is not an ISO 8601 time"
        ) from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@truststore.command("update")
def update(
    url: Annotated[str, typer.Option("--url", help="Trusted list URL: https://, http:// or file://.")],
    signer_cert: Annotated[
        list[Path], typer.Option("--signer-cert", help="Pinned list signer certificate (repeatable).")
    ],
    directory: Annotated[Path, typer.Option("--dir", help="Truststore directory (current/, previous/).")],
    validation_time: Annotated[
        str | None, typer.Option("--validation-time", help="Verify as of this ISO 8601 time (default: now).")
    ] = None,
    service_type: Annotated[
        list[str] | None,
        typer.Option(
            "--service-type", help="Only anchors of this service type URI (repeatable; default all)."
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Fetch, verify (pinned signer, XAdES, schema, dates, sequence) and atomically install a trusted list.

    Exit codes: 0 installed, 10 unchanged, 20 verification failed, 30 fetch failed, 40 local problem.
    Point Java at <dir>/current/truststore.p12 (password from EHCERTS_TRUSTSTORE_PASSWORD, none if unset)
    and PEM users at <dir>/current/truststore.pem.
    """
    from ehealth_certs.trustlist.consume import update_truststore

    try:
        now = _validation_time(validation_time)
        pins = [c for path in signer_cert for c in _read_certificates(path)]
        password = os.environ.get(TRUSTSTORE_PASSWORD_ENV)
        result = update_truststore(
            url=url,
            pinned_signers=pins,
            directory=directory,
            now=now,
            truststore_password=password.encode() if password else None,
            service_types=service_type or None,
        )
    except DomainError as exc:
        code = truststore_exit_code(exc.kind)
        if as_json:
            emit(
                True, {"status": "failed", "exit_code": code, "kind": exc.kind.value, "error": exc.detail}, ""
            )
        typer.echo(f"error: {exc.detail} [{exc.kind.value}]", err=True)
        raise typer.Exit(code) from None
    except OSError as exc:  # e.g. the directory cannot be created: nothing was installed
        detail = f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})"
        if as_json:
            emit(True, {"status": "failed", "exit_code": EXIT_LOCAL, "kind": "os-error", "error": detail}, "")
        typer.echo(f"error: {detail}", err=True)
        raise typer.Exit(EXIT_LOCAL) from None
    code = EXIT_INSTALLED if result.changed else EXIT_UNCHANGED
    data = {
        "status": "installed" if result.changed else "unchanged",
        "exit_code": code,
        "changed": result.changed,
        "sequence_number": result.sequence_number,
        "added": result.added,
        "removed": result.removed,
        "warnings": result.warnings,
        "message": result.message,
        "truststore_p12": str(directory / "current" / "truststore.p12"),
        "truststore_pem": str(directory / "current" / "truststore.pem"),
    }
    human = [result.message]
    human += [f"  + {a}" for a in result.added]
    human += [f"  - {r}" for r in result.removed]
    human += [f"  warning: {w}" for w in result.warnings]
    emit(as_json, data, "\n".join(human))
    raise typer.Exit(code)
