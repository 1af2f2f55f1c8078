"""Stable trusted-list URLs: ``/tsl/<environment>.xml`` (the signed list) and ``/tsl/<environment>.sha2``.

The bytes are served exactly as signed and stored. Anyone may read them: the list's own signature, checked
against a pinned signer certificate, is the trust boundary, not the transport.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ehealth_certs.pki.tsl import TSL_MIME_TYPE, format_time
from ehealth_certs.trustlist.service import Publication, list_url, sha2_url
from ehealth_certs.web.deps import environment, platform

router = APIRouter(prefix="/tsl", tags=["Trusted lists"])

_CACHE = "public, max-age=60"  # consumers poll .sha2; a new list must reach them quickly


async def _current(request: Request, env: str) -> Publication:
    e = environment(env)
    return await run_in_threadpool(platform(request).trustlists.current_or_publish, e)


def _conditional(request: Request, body: bytes, media_type: str, publication: Publication) -> Response:
    etag = f'"{publication.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": _CACHE,
        "Last-Modified": publication.issue_time.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    if etag in (request.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


@router.get("/", summary="The published trusted lists and their URLs")
async def index(request: Request) -> JSONResponse:
    p = platform(request)
    base = p.rt.settings.base_url
    out = {}
    for e in p.rt.environments:
        latest = await run_in_threadpool(p.trustlists.latest, e)
        out[e.value] = {
            "url": list_url(base, e),
            "sha2_url": sha2_url(base, e),
            "sequence_number": latest.sequence_number if latest else None,
            "issue_time": format_time(latest.issue_time) if latest else None,
            "next_update": format_time(latest.next_update) if latest else None,
            "sha256": latest.sha256 if latest else None,
        }
    return JSONResponse(out)


@router.get("/{env}.xml", summary="The signed ETSI TS 119 612 trusted list of an environment")
async def trusted_list(env: str, request: Request) -> Response:
    publication = await _current(request, env)
    return _conditional(request, publication.xml, TSL_MIME_TYPE, publication)


@router.get("/{env}.sha2", summary="SHA-256 (hex) of the exact bytes of /tsl/<env>.xml")
async def trusted_list_digest(env: str, request: Request) -> Response:
    publication = await _current(request, env)
    return _conditional(request, publication.sha2, "text/plain; charset=us-ascii", publication)
