"""The ASGI application: FastAPI for the API, wrapped by the OCSP fast path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ehealth_certs import __version__
from ehealth_certs.environment import Environment
from ehealth_certs.platform import Platform
from ehealth_certs.web import errors
from ehealth_certs.web.api import certra
from ehealth_certs.web.api import etk as etk_api
from ehealth_certs.web.api import registry as registry_api
from ehealth_certs.web.metrics import Metrics
from ehealth_certs.web.pki import routes as pki_routes
from ehealth_certs.web.pki import tsl as tsl_routes

log = logging.getLogger(__name__)

# Routers of other capabilities register here (ETK depot, trusted lists, registry, ...).
EXTRA_ROUTERS: list[Callable[[FastAPI], None]] = []


def create_app(
    platform: Platform, *, maintenance_interval: float | None = 15.0, leader_lock: Path | None = None
) -> Any:
    """Build the app.

    ``maintenance_interval``: seconds between background rounds (None: no background task).
    ``leader_lock``: with several worker processes, only the one holding this file lock runs the
    maintenance rounds (CRLs, OCSP re-signing, trusted lists, mail); every worker still reloads the OCSP
    responses that the others stored.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None
        if maintenance_interval is not None:
            task = asyncio.create_task(_maintenance_loop(platform, maintenance_interval, leader_lock))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="ehealth-certs",
        version=__version__,
        description="eHealth certificate platform: CertRA, EtkRA, ETK depot, CRL, OCSP, trusted lists.",
        lifespan=lifespan,
    )
    app.state.platform = platform
    metrics = Metrics()
    metrics.debian_weak_keys.set(len(platform.rt.debian_weak_keys))
    app.state.metrics = metrics
    errors.install(app)

    app.add_middleware(_Observe, metrics=metrics)

    app.include_router(certra.router)
    app.include_router(pki_routes.router)
    app.include_router(tsl_routes.router)
    app.include_router(registry_api.router)
    etk_api.register(app)  # EtkRA, ETK depot (REST + SOAP) and its ASGI fast path
    for register in EXTRA_ROUTERS:
        register(app)

    @app.get("/healthz", tags=["operations"], summary="Database and signing keys usable")
    async def healthz() -> JSONResponse:
        checks = await run_in_threadpool(_health, platform)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "fail", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def prometheus() -> Response:
        now = platform.rt.clock.now()
        for env in Environment:
            latest = await run_in_threadpool(platform.status.latest_crl, env)
            if latest is not None:
                metrics.crl_age.labels(env.value).set((now - latest.this_update).total_seconds())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    fast = pki_routes.OcspFastPath(app, lambda: platform)
    fast.metrics = metrics  # type: ignore[attr-defined]
    return fast


class _Observe:
    """Request count and latency per route template, as a raw ASGI middleware (Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream per request)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def observed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(name, scope["method"], str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)


def _health(platform: Platform) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with platform.rt.db.read() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"fail: {type(exc).__name__}"
    probe = b"ehealth-certs health probe"
    for env, er in platform.rt.environments.items():
        for role in ("issuing", "ocsp", "etkra", "tsl"):
            ca = getattr(er.pki, role)
            try:
                from ehealth_certs.pki.issuer import verify_signer

                verify_signer(ca, probe)
                checks[f"{env}/{role}"] = "ok"
            except Exception as exc:
                checks[f"{env}/{role}"] = f"fail: {type(exc).__name__}"
    return checks


def _try_lead(path: Path) -> Any:
    """Take the maintenance leadership (a non-blocking exclusive lock held while the process lives)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - kept open: the lock lives as long as the file descriptor
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


async def _maintenance_loop(platform: Platform, interval: float, leader_lock: Path | None) -> None:
    lead: Any = True if leader_lock is None else None
    while True:
        try:
            if lead is None and leader_lock is not None:
                lead = _try_lead(leader_lock)
            if lead:
                await run_in_threadpool(platform.maintenance)
            else:
                await run_in_threadpool(platform.status.load_responses)
        except Exception:
            log.exception("maintenance round failed")
        await asyncio.sleep(interval)


def worker_app() -> Any:
    """The app of one worker process (``uvicorn --factory``): settings from the environment; the parent
    (``ehcerts serve``) has already migrated the database, created the PKI and reconciled."""
    import gc

    from ehealth_certs.config import Settings

    settings = Settings()
    platform = Platform.start(settings, create_pki=False)
    app = create_app(platform, leader_lock=settings.data_dir / "maintenance.lock")
    gc.collect()
    gc.freeze()  # start-up objects leave the collector's view: shorter pauses while serving
    return app
