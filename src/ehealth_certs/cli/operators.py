"""Operator API tokens (``ehcerts admin tokens ...``): the credentials of the REST write endpoints."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from ehealth_certs.cli.common import apply_data_dir, emit, handle_errors, operator_name
from ehealth_certs.config import Settings
from ehealth_certs.identity.operators import OperatorTokens
from ehealth_certs.runtime import Runtime

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="EHCERTS_DATA_DIR", help="Data directory (database, PKI).")
]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Operator = Annotated[str | None, typer.Option("--operator", help="Operator name for the audit log.")]
TokenName = Annotated[str, typer.Option("--name", help="Token name, e.g. ci-deploy (never reused).")]

tokens = typer.Typer(
    help="Operator API tokens for the REST write endpoints (shown once, stored as SHA-256).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    from ehealth_certs.cli.server import admin

    admin.add_typer(tokens, name="tokens")


def _tokens(data_dir: Path | None) -> OperatorTokens:
    # the runtime suffices (no service of the platform is involved), and it starts faster
    apply_data_dir(data_dir)
    return OperatorTokens(Runtime.start(Settings(), create_pki=False))


@tokens.command("create")
@handle_errors
def create(
    name: TokenName,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", help="Valid for N days (default: until revoked).")
    ] = None,
    data_dir: DataDir = None,
    operator: Operator = None,
    as_json: Json = False,
) -> None:
    """Create a token and print it ONCE: only its hash is kept, it cannot be shown again."""
    valid_for = timedelta(days=expires_days) if expires_days is not None else None
    issued = _tokens(data_dir).create(name, operator=operator_name(operator), valid_for=valid_for)
    until = issued.info.expires_at.isoformat() if issued.info.expires_at else "revoked"
    emit(
        as_json,
        {**issued.info.as_dict(), "token": issued.token},
        f"{issued.token}\n"
        f"operator token {name!r} created, valid until {until}.\n"
        "Copy it now: it is not stored and cannot be shown again. Use it as `Authorization: Bearer <token>`.",
    )


@tokens.command("list")
@handle_errors
def list_tokens(data_dir: DataDir = None, as_json: Json = False) -> None:
    """List the tokens (names, status, dates; never the tokens themselves)."""
    rows = [t.as_dict() for t in _tokens(data_dir).list()]
    human = "\n".join(
        f"{r['name']:24} {r['status']:8} created {r['createdAt']} by {r['createdBy']}"
        + (f", expires {r['expiresAt']}" if r["expiresAt"] else "")
        + (f", revoked {r['revokedAt']}" if r["revokedAt"] else "")
        for r in rows
    )
    emit(as_json, rows, human or "no operator tokens")


@tokens.command("revoke")
@handle_errors
def revoke(name: TokenName, data_dir: DataDir = None, operator: Operator = None) -> None:
    """Revoke a token at once: the next request with it gets 401."""
    _tokens(data_dir).revoke(name, operator=operator_name(operator))
    typer.echo(f"operator token {name!r} revoked")
