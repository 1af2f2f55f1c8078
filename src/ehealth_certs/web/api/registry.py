"""Service registry over REST: public reads and the subscription links.

Writes (add a service or version, change a URL, deprecate) are operator commands (``ehcerts registry``):
the REST side has no operator authentication yet, and deny-by-default means no write route at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.web.deps import json_body, platform

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


def register(app: FastAPI) -> None:
    app.include_router(router)
