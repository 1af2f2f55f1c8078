"""EtkRA over REST, and the ETK depot over REST and SOAP 1.1.

EtkRA operations take a compact JWS (application/jose) signed with the holder's eHealth authentication key.
The depot is public and read-only. Its two hot paths, ``GET /api/{env}/etkdepot/etks`` and
``POST [/acceptance]/EtkDepot/v1``, are answered by ``DepotFastPath``, a raw ASGI middleware in front of the
FastAPI routing, from the depot's in-memory cache; the FastAPI routes below document the same REST call in
the OpenAPI description and serve the WSDL and its schemas.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.etkra.depot import DepotAnswer, EtkDepot, normalise_identifier
from ehealth_certs.platform import Platform
from ehealth_certs.web import errors
from ehealth_certs.web.asgi import read_body, send_response
from ehealth_certs.web.deps import environment, jws_body, platform
from ehealth_certs.web.soap import depot as soap

log = logging.getLogger(__name__)

router = APIRouter(tags=["EtkRA", "ETK depot"])

SOAP_PATHS = {"/EtkDepot/v1": Environment.PRODUCTION, "/acceptance/EtkDepot/v1": Environment.ACCEPTANCE}
_SOAP_CONTENT_TYPE = b"text/xml; charset=utf-8"


# -- EtkRA ------------------------------------------------------------------------------------------
@router.post(
    "/api/{env}/etkra/registrations", summary="StartETKRegistration (eHealth authentication signature)"
)
async def start_registration(env: str, request: Request) -> dict[str, Any]:
    token = await jws_body(request)
    return await run_in_threadpool(platform(request).etkra.start_registration, environment(env), token)


@router.post(
    "/api/{env}/etkra/registrations/complete",
    summary="CompleteETKRegistration (eHealth authentication signature)",
)
async def complete_registration(env: str, request: Request) -> dict[str, Any]:
    token = await jws_body(request)
    return await run_in_threadpool(platform(request).etkra.complete_registration, environment(env), token)


@router.post("/api/{env}/etkra/activation", summary="ActivateETK (eHealth authentication signature)")
async def activate(env: str, request: Request) -> dict[str, Any]:
    token = await jws_body(request)
    return await run_in_threadpool(platform(request).etkra.activate, environment(env), token)


# -- depot ------------------------------------------------------------------------------------------
def answer_json(answer: DepotAnswer) -> dict[str, Any]:
    if answer.etk is not None:
        return {
            "identifier": answer.matches[0].to_json(),
            "etk": base64.b64encode(answer.etk).decode("ascii"),
        }
    return {"matchingEtks": [m.to_json() for m in answer.matches]}


@router.get(
    "/api/{env}/etkdepot/etks",
    summary="GetEtk: the ETK of an identifier, or the matching identifiers (public)",
)
async def get_etk(
    env: str, request: Request, type: str = "", value: str = "", applicationId: str | None = None
) -> dict[str, Any]:
    # Normally answered by DepotFastPath before routing; this route documents the call (and is its fallback).
    e = environment(env)
    query = normalise_identifier(type, value, applicationId)
    answer = await run_in_threadpool(platform(request).depot.lookup, e, query)
    return answer_json(answer)


def _base(request: Request) -> str:
    return platform(request).rt.settings.base_url


@router.get("/EtkDepot/v1", summary="The ETK depot WSDL (?wsdl); SOAP calls are POSTed here", tags=["SOAP"])
async def wsdl_production(request: Request) -> Response:
    return _wsdl(request, "/EtkDepot/v1")


@router.get("/acceptance/EtkDepot/v1", summary="The acceptance ETK depot WSDL (?wsdl)", tags=["SOAP"])
async def wsdl_acceptance(request: Request) -> Response:
    return _wsdl(request, "/acceptance/EtkDepot/v1")


def _wsdl(request: Request, path: str) -> Response:
    if "wsdl" not in {k.lower() for k in request.query_params}:
        raise DomainError(ErrorKind.BAD_REQUEST, "POST a SOAP GetEtkRequest here, or GET ?wsdl for the WSDL")
    base = _base(request)
    return Response(soap.wsdl_for(base + path, base + "/ehealth-xsd"), media_type="text/xml; charset=utf-8")


@router.get(
    "/ehealth-xsd/{path:path}", summary="The official eHealth schemas the WSDL imports", tags=["SOAP"]
)
async def xsd(path: str) -> Response:
    return Response(soap.xsd_file(path), media_type="text/xml; charset=utf-8")


# -- fast path --------------------------------------------------------------------------------------
async def _lookup(depot: EtkDepot, env: Environment, queries: list[Any]) -> DepotAnswer:
    if all(depot.is_cached(env, q) for q in queries):
        return depot.lookup_many(env, queries)  # memory only: no need to leave the event loop
    return await run_in_threadpool(depot.lookup_many, env, queries)


class DepotFastPath:
    """Raw ASGI middleware: the depot's REST GET and SOAP POST skip routing, validation and middlewares."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            method: str = scope["method"]
            if method == "GET" and path.endswith("/etkdepot/etks") and path.startswith("/api/"):
                parts = path.split("/")
                if len(parts) == 5:
                    await self._rest(scope, send, parts[2])
                    return
            elif method == "POST" and path in SOAP_PATHS:
                await self._soap(scope, receive, send, SOAP_PATHS[path])
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _platform(scope: dict[str, Any]) -> Platform:
        p: Platform = scope["app"].state.platform
        return p

    async def _rest(self, scope: dict[str, Any], send: Any, env_name: str) -> None:
        try:
            env = environment(env_name)
            qs = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            app_ids = qs.get("applicationId")
            query = normalise_identifier(
                (qs.get("type") or [""])[0], (qs.get("value") or [""])[0], app_ids[0] if app_ids else None
            )
            answer = await _lookup(self._platform(scope).depot, env, [query])
            body = orjson.dumps(answer_json(answer))
        except DomainError as exc:
            response = errors.domain_problem(exc)
            await send_response(send, response.status_code, b"application/problem+json", bytes(response.body))
            return
        except Exception:
            log.exception("ETK depot lookup failed")
            response = errors.problem(
                500, "internal", "Internal error", "the platform could not complete the request"
            )
            await send_response(send, 500, b"application/problem+json", bytes(response.body))
            return
        await send_response(send, 200, b"application/json", body, b"max-age=60, public")

    async def _soap(self, scope: dict[str, Any], receive: Any, send: Any, env: Environment) -> None:
        body = await read_body(receive, soap.MAX_SOAP_BYTES)
        if body is None:
            await send_response(
                send, 413, _SOAP_CONTENT_TYPE, soap.fault(f"the message exceeds {soap.MAX_SOAP_BYTES} bytes")
            )
            return
        try:
            given = soap.parse_get_etk(body)
        except DomainError as exc:
            await send_response(send, 500, _SOAP_CONTENT_TYPE, soap.fault(exc.detail))
            return
        except Exception:
            log.exception("SOAP parsing failed")
            await send_response(send, 500, _SOAP_CONTENT_TYPE, soap.fault("the message could not be read"))
            return
        try:
            queries = [normalise_identifier(g.type, g.value, g.application_id) for g in given]
            answer = await _lookup(self._platform(scope).depot, env, queries)
            out = soap.found_response(given, answer)
        except DomainError as exc:
            if exc.kind in (ErrorKind.NOT_FOUND, ErrorKind.BAD_IDENTIFIER, ErrorKind.BAD_REQUEST):
                out = soap.error_response(given, exc)
            else:
                log.error("ETK depot SOAP lookup failed: %s", exc)
                await send_response(
                    send, 500, _SOAP_CONTENT_TYPE, soap.fault("the depot is unavailable", server=True)
                )
                return
        except Exception:
            log.exception("ETK depot SOAP lookup failed")
            await send_response(
                send, 500, _SOAP_CONTENT_TYPE, soap.fault("the depot is unavailable", server=True)
            )
            return
        await send_response(send, 200, _SOAP_CONTENT_TYPE, out)


def register(app: FastAPI) -> None:
    app.include_router(router)
    app.add_middleware(DepotFastPath)
