"""Operator commands of the service registry (``ehcerts registry ...``) and the mail outbox
(``ehcerts admin mail ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ehealth_certs.cli.common import apply_data_dir, emit, handle_errors, operator_name
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.platform import Platform
from ehealth_certs.registry.states import version_status

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="EHCERTS_DATA_DIR", help="Data directory (database, PKI).")
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Operator = Annotated[str | None, typer.Option("--operator", help="Operator name for the audit log.")]
Name = Annotated[str, typer.Argument(help="Service name, e.g. etkdepot.")]
Version = Annotated[str, typer.Argument(help="Version, e.g. 1.0.")]

registry = typer.Typer(
    help="The service registry: services, versions, endpoints, documents.", no_args_is_help=True
)
mail = typer.Typer(help="The mail outbox (registry notices).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(registry, name="registry")
    from ehealth_certs.cli.server import admin

    admin.add_typer(mail, name="mail")


def _platform(data_dir: Path | None) -> Platform:
    apply_data_dir(data_dir)
    return Platform.start(Settings(), create_pki=False)


def _endpoints(urls: list[str], binding: str) -> dict[tuple[Environment, str], str]:
    out: dict[tuple[Environment, str], str] = {}
    for item in urls:
        env, sep, url = item.partition("=")
        if not sep:
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"--url {item!r}: use ENVIRONMENT=URL, e.g. production=https://..."
            )
        try:
            out[(Environment(env), binding)] = url
        except ValueError as exc:
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"--url {item!r}: environment is acceptance or production"
            ) from exc
    return out


def _documents(files: list[Path], folder: Path | None) -> dict[str, bytes]:
    docs = {f.name: f.read_bytes() for f in files}
    if folder is not None:
        if not folder.is_dir():
            raise DomainError(ErrorKind.NOT_FOUND, f"--documents-dir {folder} is not a directory")
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                docs[f.relative_to(folder).as_posix()] = f.read_bytes()
    return docs


def _show(data: dict[str, Any]) -> str:
    lines = [f"{data['name']}  ({data['protocol']})  {data['title']}"]
    if data["description"]:
        lines.append(f"  {data['description']}")
    lines += [f"  doc: {link}" for link in data["documentation"]]
    for v in data["versions"]:
        lines.append(f"  version {v['version']}: {v['status']} since {v['statusSince']}")
        for env, bindings in v["endpoints"].items():
            lines += [f"    {env:10} {binding:4} {url}" for binding, url in bindings.items()]
        lines += [f"    document {d['path']}  sha256:{d['sha256'][:16]}" for d in v["documents"]]
    return "\n".join(lines)


@registry.command("list")
@handle_errors
def list_services(data_dir: DataDir = None, as_json: Json = False) -> None:
    """List the registered services and the status of their versions."""
    rows = _platform(data_dir).registry.list_services()
    human = "\n".join(
        f"{r['name']:16} {r['protocol']:5} "
        + ", ".join(f"{v['version']} ({v['status']})" for v in r["versions"])
        for r in rows
    )
    emit(as_json, rows, human or "no services")


@registry.command("show")
@handle_errors
def show(name: Name, data_dir: DataDir = None, as_json: Json = False) -> None:
    """Show a service: description, documentation, versions, endpoints and documents."""
    data = _platform(data_dir).registry.service(name)
    emit(as_json, data, _show(data))


@registry.command("add")
@handle_errors
def add(
    name: Name,
    title: Annotated[str, typer.Option(help="Human title.")],
    protocol: Annotated[str, typer.Option(help="REST, SOAP, ...")] = "REST",
    description: Annotated[str, typer.Option(help="What the service does (functional description).")] = "",
    doc_link: Annotated[
        list[str] | None, typer.Option("--doc-link", help="Documentation URL (repeat).")
    ] = None,
    data_dir: DataDir = None,
    operator: Operator = None,
    as_json: Json = False,
) -> None:
    """Register a new service (its endpoints come with its first version: add-version)."""
    data = _platform(data_dir).registry.add_service(
        name=name,
        title=title,
        protocol=protocol,
        description=description,
        documentation=doc_link or [],
        operator=operator_name(operator),
    )
    emit(as_json, data, f"service {name!r} registered")


@registry.command("add-version")
@handle_errors
def add_version(
    name: Name,
    version: Version,
    url: Annotated[list[str], typer.Option("--url", help="ENVIRONMENT=URL (repeat per environment).")],
    binding: Annotated[str, typer.Option(help="rest, soap or http.")] = "rest",
    document: Annotated[list[Path] | None, typer.Option("--document", help="WSDL/XSD file (repeat).")] = None,
    documents_dir: Annotated[
        Path | None, typer.Option("--documents-dir", help="Folder of documents, relative layout kept.")
    ] = None,
    status: Annotated[str, typer.Option(help="active or draft.")] = "active",
    notes: Annotated[str, typer.Option(help="Release notes.")] = "",
    data_dir: DataDir = None,
    operator: Operator = None,
    as_json: Json = False,
) -> None:
    """Add a version with its endpoint URLs and documents; confirmed subscribers are mailed."""
    data = _platform(data_dir).registry.add_version(
        name,
        version,
        endpoints=_endpoints(url, binding),
        documents=_documents(document or [], documents_dir),
        status=status,
        notes=notes,
        operator=operator_name(operator),
    )
    emit(as_json, data, f"{name} {version} registered")


@registry.command("set-url")
@handle_errors
def set_url(
    name: Name,
    version: Version,
    environment: Annotated[Environment, typer.Option(help="acceptance or production.")],
    url: Annotated[str, typer.Option(help="The new endpoint URL.")],
    binding: Annotated[
        str | None, typer.Option(help="rest, soap or http (needed if the version has several).")
    ] = None,
    data_dir: DataDir = None,
    operator: Operator = None,
    as_json: Json = False,
) -> None:
    """Change (or add) the endpoint URL of a version in one environment; subscribers are mailed."""
    data = _platform(data_dir).registry.set_url(
        name, version, environment, url, binding=binding, operator=operator_name(operator)
    )
    emit(as_json, data, f"{name} {version} {environment.value} URL: {url}")


@registry.command("deprecate")
@handle_errors
def deprecate(
    name: Name,
    version: Version,
    note: Annotated[str, typer.Option(help="Why, and what to use instead.")] = "",
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Mark a version deprecated; subscribers are mailed."""
    _platform(data_dir).registry.deprecate(name, version, operator=operator_name(operator), note=note)
    typer.echo(f"{name} {version} deprecated")


@registry.command("set-status")
@handle_errors
def set_status(
    name: Name,
    version: Version,
    status: Annotated[str, typer.Argument(help="draft, active, deprecated or retired.")],
    note: Annotated[str, typer.Option(help="Shown in the notice.")] = "",
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Move a version to another status (draft → active → deprecated → retired); subscribers are mailed."""
    _platform(data_dir).registry.set_status(
        name, version, version_status(status), operator=operator_name(operator), note=note
    )
    typer.echo(f"{name} {version} is {status}")


@registry.command("subscribers")
@handle_errors
def subscribers(data_dir: DataDir = None, as_json: Json = False) -> None:
    """List the subscriptions (pending, confirmed, unsubscribed)."""
    rows = _platform(data_dir).registry.subscribers()
    emit(as_json, rows, "\n".join(f"{r['status']:12} {r['email']}" for r in rows) or "no subscribers")


@mail.command("deliver")
@handle_errors
def deliver(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Run one delivery round of the outbox now (the server also does it in the background)."""
    report = _platform(data_dir).mail.deliver()
    human = f"attempted {report.attempted}: sent {report.sent}, deferred {report.deferred}, failed {report.failed}"
    if report.errors:
        human += f"\nfirst error: {report.errors[0]}"
    emit(as_json, {**report.as_dict(), "errors": report.errors}, human)


@mail.command("list")
@handle_errors
def list_mail(
    status: Annotated[str | None, typer.Option(help="pending, sent or failed.")] = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """List outbox messages, newest first."""
    rows = _platform(data_dir).mail.messages(status=status)
    human = "\n".join(
        f"{r['id']:6} {r['status']:8} attempts={r['attempts']} {r['recipient']}  {r['subject']}"
        + (
            f"\n       next attempt {r['nextAttemptAt']}; last error: {r['lastError']}"
            if r["lastError"]
            else ""
        )
        for r in rows
    )
    emit(as_json, rows, human or "outbox empty")


@mail.command("retry")
@handle_errors
def retry(
    message_id: Annotated[int, typer.Argument(help="Id of a failed message.")],
    data_dir: DataDir = None,
    operator: Operator = None,
) -> None:
    """Give a failed message a fresh series of attempts."""
    _platform(data_dir).mail.requeue(message_id, operator=operator_name(operator))
    typer.echo(f"message {message_id} queued again")
