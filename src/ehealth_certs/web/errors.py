"""THE one mapping from DomainError kinds to HTTP statuses and problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ehealth_certs.errors import DomainError, ErrorKind

log = logging.getLogger(__name__)

PROBLEM_BASE = "urn:ehealth-certs:problem:"

HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.BAD_CSR: 400,
    ErrorKind.WEAK_KEY: 400,
    ErrorKind.BAD_IDENTIFIER: 400,
    ErrorKind.BAD_SIGNATURE: 400,
    ErrorKind.CONTRACT_MISMATCH: 400,
    ErrorKind.MALFORMED_MESSAGE: 400,
    ErrorKind.CHALLENGE_INVALID: 400,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.UNTRUSTED_SIGNER: 401,
    ErrorKind.EXPIRED: 401,
    ErrorKind.NOT_ENTITLED: 403,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.REPLAY: 409,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.NOT_YET_DELIVERED: 409,
    ErrorKind.RENEWAL_NOT_OPEN: 409,
    ErrorKind.INVALID_TRANSITION: 409,
    ErrorKind.LINT_FAILURE: 500,
    ErrorKind.CONFIGURATION: 503,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}
_INTERNAL = {ErrorKind.LINT_FAILURE, ErrorKind.INTERNAL, ErrorKind.CONFIGURATION}


def http_status(kind: ErrorKind) -> int:
    return HTTP_STATUS.get(kind, 500)


def problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> Response:
    import orjson

    body = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "kind": kind,
        **extra,
    }
    headers = {"Retry-After": "10"} if kind == ErrorKind.NOT_YET_DELIVERED else None
    if kind == ErrorKind.UNAUTHENTICATED:
        # RFC 9110 15.5.2: a 401 names the scheme that would be accepted (operator tokens, RFC 6750)
        headers = {"WWW-Authenticate": 'Bearer realm="ehealth-certs"'}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/problem+json", headers=headers
    )


def domain_problem(exc: DomainError) -> Response:
    status = http_status(exc.kind)
    if exc.kind in _INTERNAL:
        log.error("internal domain error: %s", exc)
        return problem(
            status, exc.kind.value, "Internal error", "the platform could not complete the request"
        )
    extra = {k: v for k, v in exc.params.items() if isinstance(v, str | int | float | bool)}
    return problem(status, exc.kind.value, exc.kind.value.replace("-", " ").capitalize(), exc.detail, **extra)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> Response:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(
            400, ErrorKind.BAD_REQUEST.value, "Bad request", f"{where}: {first.get('msg', 'invalid')}"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
            exc.status_code, "http"
        )
        return problem(exc.status_code, kind, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(
            500, ErrorKind.INTERNAL.value, "Internal error", "the platform could not complete the request"
        )
