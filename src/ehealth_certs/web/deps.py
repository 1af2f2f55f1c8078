"""Request-scoped helpers shared by the routers."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identity.operators import OperatorTokens
from ehealth_certs.platform import Platform


def platform(request: Request) -> Platform:
    p: Platform = request.app.state.platform
    return p


def environment(env: str) -> Environment:
    try:
        return Environment(env)
    except ValueError as exc:
        raise DomainError(
            ErrorKind.NOT_FOUND, f"unknown environment {env!r} (acceptance or production)"
        ) from exc


async def operator(request: Request) -> str:
    """The operator behind ``Authorization: Bearer <operator token>``; 401 (audited) for anything else.

    A dependency of the write endpoints only: it runs before the body is read.
    """
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    presented = token if scheme.lower() == "bearer" else ""
    return await run_in_threadpool(OperatorTokens(platform(request).rt).authenticate, presented)


async def body_bytes(request: Request, limit: int | None = None) -> bytes:
    """Read the body, refusing more than the limit without buffering it all (413)."""
    cap = limit if limit is not None else platform(request).rt.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise DomainError(ErrorKind.PAYLOAD_TOO_LARGE, f"request body larger than {cap} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise DomainError(ErrorKind.PAYLOAD_TOO_LARGE, f"request body larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int | None = None) -> dict[str, Any]:
    raw = await body_bytes(request, limit)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, "the body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise DomainError(ErrorKind.BAD_REQUEST, "the body must be a JSON object")
    return value


async def jws_body(request: Request) -> str:
    """A signed request: the compact JWS made with the eID (Content-Type application/jose)."""
    raw = await body_bytes(request)
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the signed request is not a compact JWS") from exc
    if token.count(".") != 2:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the signed request is not a compact JWS")
    return token
