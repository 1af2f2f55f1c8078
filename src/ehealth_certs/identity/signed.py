"""The record of accepted signed-request ids that refuses a replay, whoever signed (eID or eHealth
certificate). The request envelope itself is ``pki/jws.py``'s ``signed_envelope`` / ``parse_signed_payload``."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.storage.models import UsedRequestId


def record_request_id(s: Session, scope: str, request_id: str, *, now: datetime, keep: timedelta) -> None:
    """Remember an accepted request id in the caller's unit of work; a second use is REPLAY.

    ``keep`` must outlast the window in which the signature is still accepted (its age limit); the
    maintenance round forgets older ids.
    """
    scoped = f"{scope}:{request_id}"
    if s.get(UsedRequestId, scoped) is not None:
        raise DomainError(ErrorKind.REPLAY, "this signed request was already used; sign a new one")
    s.add(UsedRequestId(id=scoped, expires_at=now + keep))
    try:
        s.flush()
    except IntegrityError as exc:
        raise DomainError(ErrorKind.REPLAY, "this signed request was already used; sign a new one") from exc
