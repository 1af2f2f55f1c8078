"""The record of accepted signed-request ids that refuses a replay, whoever signed (eID or eHealth
certificate). The request envelope itself is ``pki/jws.py``'s ``signed_envelope`` / ``parse_signed_payload``."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.storage.models import UsedRequestId, table_of

_INSERT = insert(table_of(UsedRequestId))


def record_request_id(s: Session, scope: str, request_id: str, *, now: datetime, keep: timedelta) -> None:
    """Remember an accepted request id in the caller's unit of work; a second use is REPLAY.

    ``keep`` must outlast the window in which the signature is still accepted (its age limit); the
    maintenance round forgets older ids.
    """
    try:
        # One Core INSERT: the primary key refuses a second use, even by a concurrent transaction.
        s.connection().execute(_INSERT, {"id": f"{scope}:{request_id}", "expires_at": now + keep})
    except IntegrityError as exc:
        raise DomainError(ErrorKind.REPLAY, "this signed request was already used; sign a new one") from exc
