"""Operator API tokens: shown once, stored as SHA-256 only, refused (and audited) when unknown, revoked
or expired, at the exact expiry instant."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from ehealth_certs.cli.main import app
from ehealth_certs.clock import FixedClock
from ehealth_certs.config import Settings
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identity.operators import OperatorTokens, TokenStatus
from ehealth_certs.platform import Platform
from ehealth_certs.storage.models import AuditEvent, Base
from tests.conftest import PASSPHRASE

OP = "operator:alice"


def _failures(platform: Platform) -> list[AuditEvent]:
    with platform.rt.db.read() as s:
        return list(
            s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.failed").order_by(AuditEvent.seq))
        )


def _database_text(platform: Platform) -> str:
    """Every value of every row of every table, as one string."""
    parts: list[str] = []
    with platform.rt.db.read() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                for value in row:
                    if isinstance(value, bytes):
                        parts.append(value.decode("latin-1"))
                    elif isinstance(value, dict | list):
                        parts.append(json.dumps(value))
                    else:
                        parts.append(str(value))
    return "\n".join(parts)


def _refused(tokens: OperatorTokens, token: str) -> DomainError:
    with pytest.raises(DomainError) as e:
        tokens.authenticate(token)
    assert e.value.kind is ErrorKind.UNAUTHENTICATED
    return e.value


def test_a_token_is_shown_once_and_only_its_hash_is_stored(platform: Platform) -> None:
    tokens = OperatorTokens(platform.rt)
    issued = tokens.create("ci-deploy", operator=OP)
    assert issued.token.startswith("ehcop_")
    # 32 random bytes in URL-safe base64: 43 characters after the prefix
    assert len(issued.token) == len("ehcop_") + 43
    assert issued.token not in repr(issued)
    assert tokens.authenticate(issued.token) == "ci-deploy"
    assert tokens.authenticate(f"  {issued.token}\n") == "ci-deploy"
    stored = _database_text(platform)
    secret = issued.token.removeprefix("ehcop_")
    assert issued.token not in stored and secret not in stored
    assert hashlib.sha256(issued.token.encode()).hexdigest() in stored
    # two tokens never share their secret
    assert tokens.create("ci-deploy-2", operator=OP).token != issued.token
    (info, _) = tokens.list()
    assert info.as_dict() == {
        "name": "ci-deploy",
        "status": "active",
        "createdAt": platform.rt.clock.now().isoformat(),
        "createdBy": OP,
        "expiresAt": None,
        "revokedAt": None,
    }
    with platform.rt.db.read() as s:
        created = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "operator.token.created")).scalars().all()
        )
    assert [(e.actor, e.object) for e in created] == [
        (OP, "operator/ci-deploy"),
        (OP, "operator/ci-deploy-2"),
    ]


def test_unknown_malformed_and_missing_tokens_are_refused_and_audited(platform: Platform) -> None:
    tokens = OperatorTokens(platform.rt)
    real = tokens.create("ci-deploy", operator=OP).token
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")
    attempts = [forged, "", "   ", "ehcop_", "Basic abc", real.removeprefix("ehcop_"), "ehcop_" + "x" * 500]
    for attempt in attempts:
        _refused(tokens, attempt)
    failures = _failures(platform)
    assert len(failures) == len(attempts)
    assert all(f.object == "operator/unknown" and f.outcome == "failure" for f in failures)
    assert all(f.details["reason"] == "unauthenticated" for f in failures)
    assert failures[1].details["detail"].startswith("an operator token is required")
    # a refused guess never lands in the log
    assert forged not in _database_text(platform)


def test_revoked_tokens_are_refused_at_once(platform: Platform) -> None:
    tokens = OperatorTokens(platform.rt)
    token = tokens.create("ci-deploy", operator=OP).token
    assert tokens.revoke("ci-deploy", operator="operator:bob").status is TokenStatus.REVOKED
    err = _refused(tokens, token)
    assert "revoked" in err.detail
    (failure,) = _failures(platform)
    assert failure.object == "operator/ci-deploy"
    (info,) = tokens.list()
    assert info.status is TokenStatus.REVOKED and info.revoked_at == platform.rt.clock.now()
    with pytest.raises(DomainError) as e:
        tokens.revoke("ci-deploy", operator=OP)
    assert e.value.kind is ErrorKind.CONFLICT
    with pytest.raises(DomainError) as e:
        tokens.revoke("nobody", operator=OP)
    assert e.value.kind is ErrorKind.NOT_FOUND
    # a name is never reused, even after revocation: an audit actor names exactly one token
    with pytest.raises(DomainError) as e:
        tokens.create("ci-deploy", operator=OP)
    assert e.value.kind is ErrorKind.CONFLICT
    with platform.rt.db.read() as s:
        revoked = s.execute(
            select(AuditEvent).where(AuditEvent.action == "operator.token.revoked")
        ).scalar_one()
    assert (revoked.actor, revoked.object) == ("operator:bob", "operator/ci-deploy")


def test_expiry_at_the_exact_instant(platform: Platform, clock: FixedClock) -> None:
    tokens = OperatorTokens(platform.rt)
    issued = tokens.create("weekly", operator=OP, valid_for=timedelta(days=7))
    assert issued.info.expires_at == clock.now() + timedelta(days=7)
    clock.advance(timedelta(days=7) - timedelta(microseconds=1))
    assert tokens.authenticate(issued.token) == "weekly"
    clock.advance(timedelta(microseconds=1))
    assert "expired" in _refused(tokens, issued.token).detail
    (failure,) = _failures(platform)
    assert failure.object == "operator/weekly"
    assert [t.status for t in tokens.list()] == [TokenStatus.EXPIRED]


@pytest.mark.parametrize(
    ("name", "valid_for"),
    [
        ("A", None),
        ("Has Space", None),
        ("x" * 65, None),
        ("../etc", None),
        ("ok-name", timedelta(0)),
        ("ok-name", timedelta(days=-1)),
        ("ok-name", timedelta(days=3651)),
    ],
)
def test_bad_names_and_validities_are_refused(
    platform: Platform, name: str, valid_for: timedelta | None
) -> None:
    with pytest.raises(DomainError) as e:
        OperatorTokens(platform.rt).create(name, operator=OP, valid_for=valid_for)
    assert e.value.kind is ErrorKind.BAD_REQUEST
    assert OperatorTokens(platform.rt).list() == []


def test_cli_create_list_revoke(platform: Platform, settings: Settings) -> None:
    env = {
        "EHCERTS_DATA_DIR": str(settings.data_dir),
        "EHCERTS_DATABASE_URL": settings.resolved_database_url,
        "EHCERTS_CA_PASSPHRASE": PASSPHRASE,
        "EHCERTS_OPERATOR": "operator:carol",
    }
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["admin", "tokens", *args], env=env)
        assert result.exit_code == code, f"{args}: {result.output}"
        return result.output

    out = run("create", "--name", "pipeline", "--expires-days", "30")
    token = out.splitlines()[0]
    assert token.startswith("ehcop_") and "cannot be shown again" in out
    created: Any = json.loads(run("create", "--name", "other", "--json"))
    assert created["token"].startswith("ehcop_") and created["expiresAt"] is None
    tokens = OperatorTokens(platform.rt)
    assert tokens.authenticate(token) == "pipeline"
    listing = run("list")
    assert "pipeline" in listing and "active" in listing and token not in listing
    rows = json.loads(run("list", "--json"))
    assert [r["name"] for r in rows] == ["other", "pipeline"]
    assert all("token" not in r for r in rows)
    assert rows[1]["createdBy"] == "operator:carol"
    assert "revoked" in run("revoke", "--name", "pipeline")
    _refused(tokens, token)
    run("revoke", "--name", "pipeline", code=6)  # conflict: revoked already
    run("create", "--name", "Bad Name", code=3)
    run("revoke", "--name", "ghost", code=5)
