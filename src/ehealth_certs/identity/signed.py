"""What every signed request shares, whoever signed it (eID or eHealth certificate): the payload
``{"id", "issueInstant", "body"}`` and the record of accepted request ids that refuses a replay."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.jws import loads_strict_json
from ehealth_certs.storage.models import UsedRequestId

_REQUEST_ID = re.compile(r"_[A-Za-z0-9-]{8,64}")
_ISSUE_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_PAYLOAD_NAMES = frozenset({"id", "issueInstant", "body"})


def parse_signed_payload(payload: bytes) -> tuple[str, datetime, dict[str, Any]]:
    """(request id, issueInstant, body) of a verified JWS payload; BAD_REQUEST for any other shape."""
    document = loads_strict_json(payload, "signed request")
    if not isinstance(document, dict) or set(document) != _PAYLOAD_NAMES:
        raise DomainError(
            ErrorKind.BAD_REQUEST, "a signed request is an object with exactly id, issueInstant and body"
        )
    request_id, instant, body = document["id"], document["issueInstant"], document["body"]
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise DomainError(ErrorKind.BAD_REQUEST, "the signed request id must be '_' + 8 to 64 [A-Za-z0-9-]")
    if not isinstance(instant, str) or not _ISSUE_INSTANT.fullmatch(instant):
        raise DomainError(ErrorKind.BAD_REQUEST, "issueInstant must be an ISO 8601 UTC time ending in Z")
    try:
        issue_instant = datetime.fromisoformat(instant).astimezone(UTC)
    except ValueError as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, f"issueInstant {instant!r} is not a valid time") from exc
    if not isinstance(body, dict):
        raise DomainError(ErrorKind.BAD_REQUEST, "the signed request body must be a JSON object")
    return request_id, issue_instant, body


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
