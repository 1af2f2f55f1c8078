"""Helpers for workflow tests: an in-process client, authentic-source rows, managers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from ehealth_certs.client.http import PlatformClient
from ehealth_certs.client.manager import CertificateManager
from ehealth_certs.clock import FixedClock
from ehealth_certs.environment import Environment
from ehealth_certs.platform import Platform
from ehealth_certs.ra.sources import add_project, import_professionals
from ehealth_certs.web.app import create_app

CONTACT = {"emailPrivate": "jan.janssens@example.be", "phonePrivate": "+32 2 000 00 00"}


def http_client(platform: Platform) -> TestClient:
    return TestClient(create_app(platform, maintenance_interval=None), base_url="http://127.0.0.1:8443")


def manager(platform: Platform, clock: FixedClock, environment: Environment = Environment.PRODUCTION,
            **kw: Any) -> CertificateManager:  # fmt: skip
    client = PlatformClient("http://127.0.0.1:8443", environment, http=http_client(platform))
    return CertificateManager(client=client, clock=clock, confirm=lambda _c: True, **kw)


def add_doctor(platform: Platform, ssin: str, first: str = "Jan", last: str = "Janssens") -> None:
    csv = f"ssin,first_name,last_name,quality,nihii\n{ssin},{first},{last},doctor,\n".encode()
    import_professionals(platform.rt, csv, operator="operator:test")


def add_acceptance_project(platform: Platform, name: str, *ssins: str) -> None:
    add_project(platform.rt, name=name, ssins=list(ssins), test_cases=["TC-1"], operator="operator:test")


def keystore_dir(tmp_path: Path) -> Path:
    d = tmp_path / "keystores"
    d.mkdir(exist_ok=True)
    return d
