"""Subscribing through the real REST endpoints and the real SMTP server."""

from __future__ import annotations

from starlette.testclient import TestClient

from ehealth_certs.platform import Platform
from tests.notify.smtp_server import SmtpServer


def subscribe(client: TestClient, platform: Platform, smtp: SmtpServer, address: str) -> str:
    """Subscribe and deliver the confirmation mail; returns its confirm link (path + query)."""
    r = client.post("/api/registry/subscriptions", json={"email": address})
    assert r.status_code == 202, r.text
    platform.mail.deliver()
    mails = smtp.recorder.to(address)
    assert mails, f"no confirmation mail for {address}"
    return mails[-1].link("confirm")


def subscribe_confirmed(client: TestClient, platform: Platform, smtp: SmtpServer, address: str) -> None:
    r = client.get(subscribe(client, platform, smtp, address))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "confirmed"}
