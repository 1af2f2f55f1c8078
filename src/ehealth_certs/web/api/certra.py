"""CertRA v2 over REST. Operations signed with the eID take a compact JWS body (application/jose)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from ehealth_certs.identifiers import IDENTIFIER_TYPES
from ehealth_certs.web.deps import environment, json_body, jws_body, platform

router = APIRouter(prefix="/api/{env}/certra", tags=["CertRA"])


@router.post("/actor-qualities", summary="GetActorQualities (eID Authentication signature)")
async def actor_qualities(env: str, request: Request) -> dict[str, Any]:
    token = await jws_body(request)
    return await run_in_threadpool(platform(request).certra.actor_qualities, environment(env), token)


@router.get("/organization-types", summary="GetGenericOrganizationTypes")
async def organization_types(env: str) -> list[dict[str, Any]]:
    environment(env)
    return [
        {"identifierType": name, "length": info.length, "validationRegEx": f"[0-9]{{1,{info.length}}}"}
        for name, info in IDENTIFIER_TYPES.items()
        if name != "SSIN"
    ]


@router.post("/contracts", summary="GenerateContract")
async def generate_contract(env: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(platform(request).certra.generate_contract, environment(env), body)


@router.post("/certificates", status_code=201, summary="GenerateCertificate (eID Signature signature)")
async def generate_certificate(env: str, request: Request) -> JSONResponse:
    p = platform(request)
    token = await jws_body(request)
    result = await run_in_threadpool(p.certra.generate_certificate, environment(env), token)
    if result["automaticallyValidated"]:
        request.app.state.metrics.issuances.inc()
    return JSONResponse(result, status_code=201)


@router.get("/certificates/{public_key_identifier}", summary="GetCertificate")
async def get_certificate(env: str, public_key_identifier: str, request: Request) -> dict[str, Any]:
    chain = await run_in_threadpool(
        platform(request).certra.get_certificate, environment(env), public_key_identifier
    )
    return {"certificates": [base64.b64encode(der).decode() for der in chain]}


@router.post("/revocation-contracts", summary="GenerateRevocationContract")
async def generate_revocation_contract(env: str, request: Request) -> dict[str, Any]:
    body = await json_body(request)
    return await run_in_threadpool(
        platform(request).certra.generate_revocation_contract, environment(env), body
    )


@router.post("/revocations", summary="Revoke (eID Signature signature)")
async def revoke(env: str, request: Request) -> dict[str, str]:
    token = await jws_body(request)
    await run_in_threadpool(platform(request).certra.revoke, environment(env), token)
    request.app.state.metrics.revocations.inc()
    return {"status": "revoked"}


@router.post("/certificate-info", summary="GetCertificateInfoForCitizen (eID Authentication signature)")
async def certificate_info(env: str, request: Request) -> list[dict[str, Any]]:
    token = await jws_body(request)
    return await run_in_threadpool(
        platform(request).certra.certificate_info_for_citizen, environment(env), token
    )
