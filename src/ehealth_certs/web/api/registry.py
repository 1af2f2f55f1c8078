"""Service registry over REST: public reads, the subscription links, and the operator writes.

Writes (add a service or version, change a URL, change a status) need an operator token
(``Authorization: Bearer ehcop_...``, see ``identity/operators.py``); without one they answer 401 before
the body is read. Each write is one call of the same ``RegistryService`` method the CLI uses, so the
change, its audit event and the subscribers' mails stay one transaction.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.registry.states import version_status
from ehealth_certs.web.deps import environment, json_body, operator, platform

router = APIRouter(prefix="/api/registry", tags=["Service registry"])


@router.get("/services", summary="The catalogue: every service with its versions and their status")
async def list_services(request: Request) -> list[dict[str, Any]]:
    return await run_in_threadpool(platform(request).registry.list_services)


@router.get(
    "/services/{name}", summary="One service: description, documentation, versions, endpoints, documents"
)
async def get_service(name: str, request: Request) -> dict[str, Any]:
    return await run_in_threadpool(platform(request).registry.service, name)


@router.get(
    "/services/{name}/versions/{version}/documents/{path:path}",
    summary="An interface document (WSDL, XSD) of a version; relative imports resolve below the same URL",
)
async def get_document(name: str, version: str, path: str, request: Request) -> Response:
    doc = await run_in_threadpool(platform(request).registry.document, name, version, path)
    etag = f'"{doc.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=3600",
        "Content-Disposition": f'inline; filename="{doc.path.rsplit("/", 1)[-1]}"',
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(doc.content, media_type=doc.media_type, headers=headers)


@router.post(
    "/subscriptions", status_code=202, summary="Subscribe an e-mail address (a confirmation mail follows)"
)
async def subscribe(request: Request) -> JSONResponse:
    body = await json_body(request)
    email = body.get("email")
    if not isinstance(email, str):
        raise DomainError(ErrorKind.BAD_REQUEST, "email: a string is required")
    await run_in_threadpool(platform(request).registry.subscribe, email)
    # the same answer whether the address was new, pending or subscribed already
    return JSONResponse(
        {
            "status": "confirmation-requested",
            "detail": "if the address can be subscribed, a confirmation mail is on its way",
        },
        status_code=202,
    )


@router.get("/subscriptions/confirm", summary="Confirm a subscription (the link of the confirmation mail)")
async def confirm(token: str, request: Request) -> dict[str, str]:
    return await run_in_threadpool(platform(request).registry.confirm, token)


@router.get("/subscriptions/unsubscribe", summary="Unsubscribe (the link at the bottom of every mail)")
async def unsubscribe(token: str, request: Request) -> dict[str, str]:
    return await run_in_threadpool(platform(request).registry.unsubscribe, token)


@router.post("/subscriptions/unsubscribe", summary="One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)")
async def unsubscribe_one_click(token: str, request: Request) -> dict[str, str]:
    return await run_in_threadpool(platform(request).registry.unsubscribe, token)


# operator writes ---------------------------------------------------------------------------------
Operator = Annotated[str, Depends(operator)]
# a version carries its interface documents (each at most 2 MiB, base64 adds a third): a larger cap than
# the platform-wide one, offered only to authenticated operators since the token is checked first
VERSION_BODY_LIMIT = 12 * 1024 * 1024
MAX_DOCUMENTS = 200


def _fields(body: dict[str, Any], allowed: set[str], where: str = "body") -> None:
    # a misspelt optional field would otherwise be dropped without a word
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"{where}: unknown field(s) {', '.join(map(repr, unknown[:5]))}"
        )


def _text(body: dict[str, Any], key: str, *, default: str | None = None, max_len: int = 100_000) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise DomainError(ErrorKind.BAD_REQUEST, f"{key}: a string is required")
    # PostgreSQL stores no NUL character; a column's length is its contract on both databases
    if "\x00" in value or len(value) > max_len:
        raise DomainError(ErrorKind.BAD_REQUEST, f"{key}: at most {max_len} characters, no NUL")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DomainError(ErrorKind.BAD_REQUEST, f"{where}: an object is required")
    return value


def _endpoints(value: Any) -> dict[tuple[Environment, str], str]:
    out: dict[tuple[Environment, str], str] = {}
    for env, bindings in _object(value, "endpoints").items():
        try:
            e = Environment(env)
        except ValueError as exc:
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"endpoints: unknown environment {env!r} (acceptance or production)"
            ) from exc
        for binding, url in _object(bindings, f"endpoints.{env}").items():
            if not isinstance(url, str):
                raise DomainError(
                    ErrorKind.BAD_REQUEST, f"endpoints.{env}.{binding}: a URL string is required"
                )
            out[(e, binding)] = url
    return out


def _documents(value: Any) -> dict[str, bytes]:
    if not isinstance(value, list) or len(value) > MAX_DOCUMENTS:
        raise DomainError(ErrorKind.BAD_REQUEST, f"documents: a list of at most {MAX_DOCUMENTS} objects")
    out: dict[str, bytes] = {}
    for i, item in enumerate(value):
        doc = _object(item, f"documents[{i}]")
        _fields(doc, {"path", "content_b64", "media_type"}, f"documents[{i}]")
        path = _text(doc, "path", max_len=300)
        if "media_type" in doc:
            _text(doc, "media_type", max_len=100)  # informative: the type served follows the extension
        try:
            content = base64.b64decode(_text(doc, "content_b64", max_len=VERSION_BODY_LIMIT), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DomainError(ErrorKind.BAD_REQUEST, f"documents[{i}].content_b64: not valid base64") from exc
        if path in out:
            raise DomainError(ErrorKind.BAD_REQUEST, f"documents: {path!r} given twice")
        out[path] = content
    return out


def _created(data: dict[str, Any], location: str) -> JSONResponse:
    return JSONResponse(data, status_code=201, headers={"Location": location})


@router.post("/services", status_code=201, summary="Register a service (operator token required)")
async def add_service(request: Request, who: Operator) -> JSONResponse:
    body = await json_body(request)
    _fields(body, {"name", "title", "protocol", "description", "documentation"})
    links = body.get("documentation", [])
    if not isinstance(links, list) or not all(isinstance(u, str) for u in links) or len(links) > 50:
        raise DomainError(ErrorKind.BAD_REQUEST, "documentation: a list of at most 50 URL strings")
    name = _text(body, "name", max_len=64)
    data = await run_in_threadpool(
        lambda: platform(request).registry.add_service(
            name=name,
            title=_text(body, "title", max_len=200),
            protocol=_text(body, "protocol", default="REST", max_len=16),
            description=_text(body, "description", default=""),
            documentation=links,
            operator=who,
        )
    )
    return _created(data, f"/api/registry/services/{name}")


@router.post(
    "/services/{name}/versions",
    status_code=201,
    summary="Add a version: endpoints per environment, documents in base64 (operator token required)",
)
async def add_version(name: str, request: Request, who: Operator) -> JSONResponse:
    body = await json_body(request, VERSION_BODY_LIMIT)
    _fields(body, {"version", "endpoints", "documents", "status", "notes"})
    version = _text(body, "version", max_len=32)
    endpoints = _endpoints(body.get("endpoints", {}))
    documents = _documents(body.get("documents", []))
    status = _text(body, "status", default="active", max_len=16)
    notes = _text(body, "notes", default="")
    data = await run_in_threadpool(
        lambda: platform(request).registry.add_version(
            name, version, endpoints=endpoints, documents=documents, status=status, notes=notes, operator=who
        )
    )
    return _created(data, f"/api/registry/services/{name}")


@router.put(
    "/services/{name}/versions/{version}/endpoints/{env}",
    summary="Set the endpoint URL of a version in one environment (operator token required)",
)
async def set_url(name: str, version: str, env: str, request: Request, who: Operator) -> dict[str, Any]:
    environ = environment(env)
    body = await json_body(request)
    _fields(body, {"url", "binding"})
    url = _text(body, "url", max_len=500)
    binding = _text(body, "binding", max_len=16) if "binding" in body else None
    return await run_in_threadpool(
        lambda: platform(request).registry.set_url(name, version, environ, url, binding=binding, operator=who)
    )


@router.post(
    "/services/{name}/versions/{version}/status",
    summary="Move a version to another status, e.g. deprecated (operator token required)",
)
async def set_status(name: str, version: str, request: Request, who: Operator) -> dict[str, Any]:
    body = await json_body(request)
    _fields(body, {"status", "note"})
    target = version_status(_text(body, "status", max_len=16))
    note = _text(body, "note", default="")
    return await run_in_threadpool(
        lambda: platform(request).registry.set_status(name, version, target, operator=who, note=note)
    )


def register(app: FastAPI) -> None:
    app.include_router(router)
