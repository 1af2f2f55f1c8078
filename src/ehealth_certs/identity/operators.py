"""Operator API tokens: the authentication channel of the REST write endpoints (ARCHITECTURE rule 9).

A token is ``ehcop_`` followed by 256 random bits (``secrets``). It is shown once, when created; the
database keeps only its SHA-256, so a copy of the database (or of a backup) grants nothing. A high-entropy
secret needs no slow hash: SHA-256 is preimage resistant, and looking a token up by its hash leaks
nothing a guesser could use. Every refusal is written to the audit log as ``auth.failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models.operators import OperatorToken

TOKEN_PREFIX = "ehcop_"  # noqa: S105  (a public prefix so that scanners can spot leaked tokens)
TOKEN_BYTES = 32  # 256 bits
# longer than any token we issue: anything longer is refused before it is hashed
MAX_TOKEN_CHARS = 128
MAX_VALIDITY_DAYS = 3650

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_DUMMY_HASH = hashlib.sha256(b"no such operator token").hexdigest()


class TokenStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class OperatorTokenInfo:
    """What an operator may see of a token: everything except the token."""

    name: str
    status: TokenStatus
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "createdAt": self.created_at.isoformat(),
            "createdBy": self.created_by,
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
            "revokedAt": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` exists only in this object and in what the operator copies from it."""

    token: str
    info: OperatorTokenInfo

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"IssuedToken(name={self.info.name!r}, token='{TOKEN_PREFIX}...')"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"token name {value!r}: use 2-64 of a-z, 0-9, '.', '_' and '-'"
        )
    return value


def _status(row: OperatorToken, now: datetime) -> TokenStatus:
    if row.revoked_at is not None:
        return TokenStatus.REVOKED
    if row.expires_at is not None and now >= row.expires_at:
        return TokenStatus.EXPIRED
    return TokenStatus.ACTIVE


def _info(row: OperatorToken, now: datetime) -> OperatorTokenInfo:
    return OperatorTokenInfo(
        name=row.name,
        status=_status(row, now),
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class OperatorTokens:
    """Create, list, revoke and check operator tokens. Stateless: cheap to build per request."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def create(self, name: str, *, operator: str, valid_for: timedelta | None = None) -> IssuedToken:
        """A new token named ``name`` (unique for ever), valid for ``valid_for`` or until revoked."""
        name = _name(name)
        if valid_for is not None and not timedelta(0) < valid_for <= timedelta(days=MAX_VALIDITY_DAYS):
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"token validity: between 1 and {MAX_VALIDITY_DAYS} days"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        now = self._rt.clock.now()
        row = OperatorToken(
            name=name,
            token_sha256=token_hash(token),
            created_at=now,
            created_by=operator,
            expires_at=now + valid_for if valid_for is not None else None,
        )
        conflict = DomainError(
            ErrorKind.CONFLICT, f"an operator token named {name!r} exists (or existed): choose another name"
        )
        try:
            with self._rt.db.transaction() as s:
                if s.execute(select(OperatorToken.id).where(OperatorToken.name == name)).first():
                    raise conflict
                s.add(row)
                s.flush()
                self._rt.audit.append(
                    s,
                    actor=operator,
                    action="operator.token.created",
                    obj=f"operator/{name}",
                    expires_at=row.expires_at.isoformat() if row.expires_at else None,
                )
                info = _info(row, now)
        except IntegrityError as exc:  # the same name created at the same instant by another process
            raise conflict from exc
        return IssuedToken(token, info)

    def list(self) -> list[OperatorTokenInfo]:
        now = self._rt.clock.now()
        with self._rt.db.read() as s:
            return [_info(r, now) for r in s.scalars(select(OperatorToken).order_by(OperatorToken.name))]

    def revoke(self, name: str, *, operator: str) -> OperatorTokenInfo:
        with self._rt.db.transaction() as s:
            row = s.execute(select(OperatorToken).where(OperatorToken.name == name)).scalar_one_or_none()
            if row is None:
                raise DomainError(ErrorKind.NOT_FOUND, f"no operator token named {name!r}")
            if row.revoked_at is not None:
                raise DomainError(ErrorKind.CONFLICT, f"operator token {name!r} is revoked already")
            now = self._rt.clock.now()
            row.revoked_at, row.revoked_by = now, operator
            self._rt.audit.append(s, actor=operator, action="operator.token.revoked", obj=f"operator/{name}")
            return _info(row, now)

    def authenticate(self, token: str) -> str:
        """The operator name of a valid token; UNAUTHENTICATED (and an audit event) for anything else."""
        obj = "operator/unknown"
        try:
            row = self._find(token)
            obj = f"operator/{row.name}"
            status = _status(row, self._rt.clock.now())
            if status is TokenStatus.REVOKED:
                raise DomainError(ErrorKind.UNAUTHENTICATED, f"operator token {row.name!r} is revoked")
            if status is TokenStatus.EXPIRED:
                raise DomainError(ErrorKind.UNAUTHENTICATED, f"operator token {row.name!r} has expired")
        except DomainError as exc:
            self._rt.audit_auth_failure(obj, exc)
            raise
        return row.name

    def _find(self, token: str) -> OperatorToken:
        token = token.strip()
        if not token:
            raise DomainError(
                ErrorKind.UNAUTHENTICATED, "an operator token is required (Authorization: Bearer ...)"
            )
        unknown = DomainError(ErrorKind.UNAUTHENTICATED, "the operator token is not valid")
        if len(token) > MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIX):
            raise unknown
        digest = token_hash(token)
        with self._rt.db.read() as s:
            row = s.execute(
                select(OperatorToken).where(OperatorToken.token_sha256 == digest)
            ).scalar_one_or_none()
        # compared even when nothing matched, so that known and unknown tokens take the same path
        if not hmac.compare_digest(row.token_sha256 if row else _DUMMY_HASH, digest) or row is None:
            raise unknown
        return row
