"""Public PKI publication per environment: CA certificates, chain zip, CRL (the CDP URL), OCSP (the AIA URL).

OCSP does not go through FastAPI at all: ``OcspFastPath`` answers it at the ASGI level from pre-signed
responses in memory, so that the responder is limited by the socket, not by routing and validation.
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ehealth_certs.web.asgi import read_body, send_response
from ehealth_certs.web.deps import environment, platform

router = APIRouter(prefix="/pki/{env}", tags=["PKI"])

OCSP_MAX_REQUEST = 8 * 1024


@router.get("/root.crt", summary="The root CA certificate (DER)")
async def root_certificate(env: str, request: Request) -> Response:
    er = platform(request).rt.environments[environment(env)]
    der = er.pki.root.certificate.public_bytes(serialization.Encoding.DER)
    return Response(der, media_type="application/pkix-cert")


@router.get("/issuing.crt", summary="The issuing CA certificate (DER; the AIA caIssuers URL)")
async def issuing_certificate(env: str, request: Request) -> Response:
    er = platform(request).rt.environments[environment(env)]
    der = er.pki.issuing.certificate.public_bytes(serialization.Encoding.DER)
    return Response(der, media_type="application/pkix-cert")


@router.get("/chain.zip", summary="Issuing and root CA certificates, PEM and DER, in a zip")
async def chain_zip(env: str, request: Request) -> Response:
    e = environment(env)
    er = platform(request).rt.environments[e]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, cert in (("issuing", er.pki.issuing.certificate), ("root", er.pki.root.certificate)):
            zf.writestr(f"{e}-{name}.crt", cert.public_bytes(serialization.Encoding.DER))
            zf.writestr(f"{e}-{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return Response(
        buf.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="ehealth-certs-{e}-chain.zip"'},
    )


@router.get("/crl", summary="The issuing CA's CRL (DER; the CDP URL of end-entity certificates)")
async def crl(env: str, request: Request) -> Response:
    return await _crl(env, request, "issuing")


@router.get("/root.crl", summary="The root's CRL of CA certificates (DER; the CDP URL of the issuing CA)")
async def root_crl(env: str, request: Request) -> Response:
    return await _crl(env, request, "root")


async def _crl(env: str, request: Request, role: str) -> Response:
    e = environment(env)
    status = platform(request).status
    latest = await run_in_threadpool(status.latest_crl, e, role)
    if latest is None:
        latest = await run_in_threadpool(status.publish_crl, e, role)
    return Response(
        latest.der,
        media_type="application/pkix-crl",
        headers={"Cache-Control": "max-age=60", "ETag": f'"{latest.number}"'},
    )


class OcspFastPath:
    """ASGI wrapper: ``POST /pki/<env>/ocsp`` and ``GET /pki/<env>/ocsp/<base64>`` before FastAPI."""

    def __init__(self, app: Any, get_platform: Any) -> None:
        self.app = app
        self.get_platform = get_platform

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        parts = path.split("/", 4)  # ['', 'pki', env, 'ocsp', rest?]
        if len(parts) < 4 or parts[1] != "pki" or parts[3] != "ocsp":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        body: bytes | None
        if method == "POST" and len(parts) == 4:
            body = await read_body(receive, OCSP_MAX_REQUEST)
        elif method == "GET" and len(parts) == 5:
            body = self._decode_get(parts[4])
        else:
            await self.app(scope, receive, send)
            return
        p = self.get_platform()
        from ehealth_certs.pki.ocsp import error_response

        answer = p.status.answer(body) if body is not None else error_response("malformedRequest")
        p_metrics = getattr(self, "metrics", None)
        if p_metrics is not None:
            p_metrics.ocsp.inc()
        await send_response(
            send,
            200,
            b"application/ocsp-response",
            answer,
            b"max-age=300, public, no-transform, must-revalidate",
        )

    @staticmethod
    def _decode_get(segment: str) -> bytes | None:
        if len(segment) > OCSP_MAX_REQUEST * 2:
            return None
        try:
            return base64.b64decode(unquote(segment), validate=False)
        except (binascii.Error, ValueError):
            return None
