"""Server and operator commands: serve, init, admin ..., dev make-eid."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization

from ehealth_certs.cli.common import apply_data_dir, emit, handle_errors, operator_name, secret
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.platform import Platform

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="EHCERTS_DATA_DIR", help="Data directory (database, PKI).")
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Operator = Annotated[str | None, typer.Option("--operator", help="Operator name for the audit log.")]

admin = typer.Typer(
    help="Operator commands (authentic sources, requests, revocation, audit).", no_args_is_help=True
)
admin_import = typer.Typer(help="Load authentic sources from CSV.", no_args_is_help=True)
admin_requests = typer.Typer(help="Requests waiting for an operator.", no_args_is_help=True)
admin_projects = typer.Typer(help="Acceptance projects of integrators.", no_args_is_help=True)
admin_mandates = typer.Typer(help="Persons entitled to act for an organisation.", no_args_is_help=True)
admin_audit = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
admin.add_typer(admin_import, name="import")
admin.add_typer(admin_requests, name="requests")
admin.add_typer(admin_projects, name="projects")
admin.add_typer(admin_mandates, name="mandates")
admin.add_typer(admin_audit, name="audit")
dev = typer.Typer(help="Development helpers (test eID cards).", no_args_is_help=True)


def _platform(data_dir: Path | None, *, create_pki: bool = False) -> Platform:
    apply_data_dir(data_dir)
    return Platform.start(Settings(), create_pki=create_pki)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("init")(init)
    app.add_typer(admin, name="admin")
    app.add_typer(dev, name="dev")


@handle_errors
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8443).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default EHCERTS_WORKERS, else 1 per core).")
    ] = None,
) -> None:
    """Start the platform (creates the development PKI on first start) and print its URL."""
    import uvicorn

    from ehealth_certs.web.app import create_app
    from ehealth_certs.web.workers import run_workers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    apply_data_dir(data_dir)
    overrides: dict[str, object] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    count = workers or settings.workers or os.cpu_count() or 1
    platform = Platform.start(settings, create_pki=True)
    failed = platform.maintenance(reconcile_after=timedelta(0))  # nothing is in flight before we serve
    if failed:
        raise DomainError(
            ErrorKind.UNAVAILABLE, f"start-up maintenance failed ({', '.join(failed)}); see the log"
        )
    if len(platform.rt.debian_weak_keys) == 0:
        typer.echo(
            "WARNING: no Debian weak-key list is loaded, so keys from CVE-2008-0166 are not refused; put the"
            f" lists in {settings.debian_weak_keys_dir} (docs/operations.md)",
            err=True,
        )
    typer.echo(f"ehealth-certs is serving on {settings.base_url}  (data: {settings.data_dir.resolve()})")
    typer.echo(
        f"  API docs: {settings.base_url}/docs   health: {settings.base_url}/healthz   workers: {count}"
    )
    common: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "loop": "uvloop", "http": "httptools",
        "access_log": False, "log_level": "warning",
    }  # fmt: skip
    if count == 1:
        import gc

        app = create_app(platform)
        gc.collect()
        gc.freeze()  # start-up objects leave the collector's view: shorter pauses while serving
        uvicorn.run(app, **common)
        return
    platform.close()  # each worker builds its own platform from the same environment
    os.environ["EHCERTS_DATA_DIR"] = str(settings.data_dir)
    os.environ["EHCERTS_HOST"], os.environ["EHCERTS_PORT"] = settings.host, str(settings.port)
    status = run_workers(count, common)
    if status:
        raise typer.Exit(status)


@handle_errors
def init(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Create (once) the PKI of both environments; running it again changes nothing."""
    platform = _platform(data_dir, create_pki=True)
    out = {
        env.value: {
            role: getattr(er.pki, role).certificate.subject.rfc4514_string()
            for role in ("root", "issuing", "ocsp", "etkra", "tsl")
        }
        for env, er in platform.rt.environments.items()
    }
    lines = [f"{env}: {role:8} {subject}" for env, roles in out.items() for role, subject in roles.items()]
    emit(as_json, out, "\n".join(lines))


@admin_import.command("professionals")
@handle_errors
def import_professionals(
    file: Annotated[Path, typer.Argument(help="CSV: ssin,first_name,last_name,quality,nihii")],
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Import care professionals and their qualities (all rows or none)."""
    from ehealth_certs.ra.sources import import_professionals as run

    n = run(_platform(data_dir).rt, file.read_bytes(), operator=operator_name(operator))
    typer.echo(f"imported {n} professional rows")


@admin_import.command("organisations")
@handle_errors
def import_organisations(
    file: Annotated[Path, typer.Argument(help="CSV: type,number,name")],
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Import organisations (all rows or none)."""
    from ehealth_certs.ra.sources import import_organisations as run

    n = run(_platform(data_dir).rt, file.read_bytes(), operator=operator_name(operator))
    typer.echo(f"imported {n} organisation rows")


@admin_mandates.command("add")
@handle_errors
def add_mandate(
    ssin: Annotated[str, typer.Option(help="The mandated person's SSIN.")],
    organization: Annotated[str, typer.Option(help="TYPE=ID, e.g. CBE=0809394427.")],
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Entitle a person to request and revoke an organisation's certificates."""
    from ehealth_certs.ra.sources import add_mandate as run

    id_type, _, number = organization.partition("=")
    if not number:
        raise DomainError(ErrorKind.BAD_REQUEST, "--organization must be TYPE=ID")
    run(_platform(data_dir).rt, ssin=ssin, id_type=id_type, number=number, operator=operator_name(operator))
    typer.echo(f"mandate added: {ssin} for {organization}")


@admin_projects.command("add")
@handle_errors
def add_project(
    name: Annotated[str, typer.Option(help="Project name (integrators name it in acceptance requests).")],
    ssin: Annotated[list[str], typer.Option(help="Integrator SSIN (repeat for several).")],
    test_case: Annotated[list[str] | None, typer.Option(help="Test case (repeat for several).")] = None,
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Register an integrator's acceptance project."""
    from ehealth_certs.ra.sources import add_project as run

    pid = run(
        _platform(data_dir).rt,
        name=name,
        ssins=ssin,
        test_cases=test_case or [],
        operator=operator_name(operator),
    )
    typer.echo(f"project {name!r} registered (id {pid})")


@admin_requests.command("list")
@handle_errors
def list_requests(
    status: Annotated[str | None, typer.Option(help="PENDING_APPROVAL, APPROVED, ISSUED or REFUSED.")] = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """List certificate requests (by default all)."""
    rows = _platform(data_dir).certra.list_requests(status=status)
    human = (
        "\n".join(f"{r['id']}  {r['status']:16} {r['environment']:10} {r['dn']}" for r in rows)
        or "no requests"
    )
    emit(as_json, rows, human)


@admin_requests.command("approve")
@handle_errors
def approve(
    request_id: Annotated[str, typer.Argument()], data_dir: DataDir = None, operator: Operator = None
) -> None:
    """Approve a waiting request and issue its certificate (the approver is never the requester)."""
    cert = _platform(data_dir).certra.approve(request_id, operator_name(operator))
    typer.echo(f"approved; issued serial {cert.serial_number:x} for {cert.subject.rfc4514_string()}")


@admin_requests.command("refuse")
@handle_errors
def refuse(
    request_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why (shown to the requester).")],
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Refuse a waiting request."""
    _platform(data_dir).certra.refuse(request_id, operator_name(operator), reason)
    typer.echo("refused")


@admin.command("revoke")
@handle_errors
def operator_revoke(
    public_key_identifier: Annotated[str, typer.Option("--public-key-identifier", help="Hex SKI.")],
    reason: Annotated[
        str, typer.Option(help="keyCompromise, affiliationChanged, superseded, cessationOfOperation")
    ],
    environment: Annotated[Environment, typer.Option()] = Environment.PRODUCTION,
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Revoke a certificate as an operator."""
    p = _platform(data_dir)
    p.certra.operator_revoke(environment, public_key_identifier, reason, operator_name(operator))
    p.status.publish_crl(environment)
    typer.echo("revoked; CRL republished")


@admin.command("publish-crl")
@handle_errors
def publish_crl(
    environment: Annotated[Environment, typer.Option()] = Environment.PRODUCTION, data_dir: DataDir = None
) -> None:
    """Publish a fresh CRL now."""
    crl = _platform(data_dir).status.publish_crl(environment)
    typer.echo(f"CRL {crl.number} published, next update {crl.next_update.isoformat()}")


@admin_audit.command("verify")
@handle_errors
def audit_verify(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Check the audit log's hash chain; names the first entry of every break."""
    from ehealth_certs.audit.log import verify_session

    p = _platform(data_dir)
    with p.rt.db.read() as s:
        breaks = verify_session(s, p.rt.audit.head_path)
        from sqlalchemy import func, select

        from ehealth_certs.storage.models import AuditEvent

        count = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    if breaks:
        emit(
            as_json, [{"seq": b.seq, "problem": b.problem} for b in breaks], "\n".join(str(b) for b in breaks)
        )
        raise typer.Exit(8)
    emit(as_json, {"entries": count, "status": "ok"}, f"audit log intact: {count} entries")


@dev.command("make-eid")
@handle_errors
def make_eid(
    ssin: Annotated[str, typer.Option(help="The person's SSIN (national number).")],
    first_name: Annotated[str, typer.Option(help="Given name(s).")],
    last_name: Annotated[str, typer.Option(help="Surname.")],
    out: Annotated[Path, typer.Option(help="Where to write the PIN-protected test eID file.")],
    data_dir: DataDir = None,
) -> None:
    """Create a test eID (Authentication + Signature certificates) under the test Citizen CA.

    The test Citizen CA is created once in the data directory and trusted by the platform.
    PIN from EHCERTS_EID_PIN or a prompt.
    """
    from ehealth_certs.client.eid import FileEid
    from ehealth_certs.clock import SystemClock
    from ehealth_certs.identifiers import validate_ssin
    from ehealth_certs.identity.trust import EidTrust
    from ehealth_certs.pki.eid_dev import create_citizen_ca, create_test_eid

    apply_data_dir(data_dir)
    settings = Settings()
    ssin = validate_ssin(ssin)
    pin = secret("EHCERTS_EID_PIN", "PIN for the new test eID", confirm=True)
    if out.exists():
        raise DomainError(ErrorKind.CONFLICT, f"{out} exists already")
    now = SystemClock().now()
    ca_dir = settings.data_dir / "dev" / "citizen-ca"
    cert_path, key_path = ca_dir / "citizen-ca.crt.pem", ca_dir / "citizen-ca.key.pem"
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    # The test Citizen CA stands in for the government's CA: it is not a platform key, so it is kept as
    # an ordinary encrypted PEM here rather than behind a Signer.
    if cert_path.exists():
        ca_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), settings.ca_key_passphrase())
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise DomainError(ErrorKind.CONFIGURATION, "the test Citizen CA key is not RSA")
        ca_key = loaded
    else:
        ca_cert, ca_key = create_citizen_ca(now=now)
        ca_dir.mkdir(parents=True, exist_ok=True)
        key_path.write_bytes(
            ca_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(settings.ca_key_passphrase()),
            )
        )
        key_path.chmod(0o600)
        cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    EidTrust(settings.eid_trust_dir).add("dev-citizen-ca", ca_cert.public_bytes(serialization.Encoding.PEM))
    eid = create_test_eid(
        ssin=ssin, first_name=first_name, last_name=last_name, ca=(ca_cert, ca_key), now=now
    )
    FileEid.write(out, eid, pin)
    typer.echo(f"test eID for {first_name} {last_name} ({ssin}) written to {out}")
