"""Double opt-in subscriptions and change notices, delivered to a real SMTP server."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from ehealth_certs.clock import FixedClock
from ehealth_certs.environment import Environment
from ehealth_certs.platform import Platform
from ehealth_certs.registry import VersionStatus
from ehealth_certs.storage.models.registry import MailMessage, RegistryToken
from tests.notify.smtp_server import SmtpServer
from tests.ra.helpers import http_client
from tests.registry.conftest import wire
from tests.registry.helpers import subscribe, subscribe_confirmed

OP = "operator:alice"
ALICE, BOB = "alice@example.be", "bob@example.org"


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def test_confirmed_subscribers_get_one_mail_per_change(platform: Platform, smtp: SmtpServer) -> None:
    wire(platform, smtp)
    client = http_client(platform)
    subscribe_confirmed(client, platform, smtp, ALICE)
    subscribe_confirmed(client, platform, smtp, BOB)
    subscribe(client, platform, smtp, "carol@example.be")  # never confirms
    smtp.recorder.received.clear()

    platform.registry.set_url(
        "certra", "2.0", Environment.PRODUCTION, "https://certra.example.be/v2", operator=OP
    )
    assert platform.mail.deliver().sent == 2
    assert sorted(r.rcpt_tos[0] for r in smtp.recorder.received) == [ALICE, BOB]
    mail = smtp.recorder.to(ALICE)[0]
    assert mail.message["Subject"] == "[ehealth-certs] certra 2.0: production URL changed"
    assert mail.message["From"] == platform.rt.settings.mail_from
    assert mail.message["To"] == ALICE
    assert "https://certra.example.be/v2" in mail.body
    assert "http://127.0.0.1:8443/api/production/certra -> https://certra.example.be/v2" in mail.body
    unsubscribe_link = mail.link("unsubscribe")
    assert mail.message["List-Unsubscribe"] == f"<http://127.0.0.1:8443{unsubscribe_link}>"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # each recipient gets its own link
    assert smtp.recorder.to(BOB)[0].link("unsubscribe") != unsubscribe_link

    smtp.recorder.received.clear()
    platform.registry.add_version(
        "certra",
        "3.0",
        operator=OP,
        documents={},
        endpoints={(Environment.ACCEPTANCE, "rest"): "https://acpt.example.be/certra/v3"},
    )
    platform.registry.deprecate("certra", "2.0", operator=OP, note="move to 3.0 before June")
    assert platform.mail.deliver().sent == 4
    subjects = [r.message["Subject"] for r in smtp.recorder.to(ALICE)]
    assert subjects == ["[ehealth-certs] certra 3.0: new version", "[ehealth-certs] certra 2.0: deprecated"]
    deprecation = smtp.recorder.to(ALICE)[1].body
    assert "active -> deprecated" in deprecation and "move to 3.0 before June" in deprecation
    assert "active version(s): 3.0" in deprecation
    assert "https://acpt.example.be/certra/v3" in smtp.recorder.to(ALICE)[0].body
    assert smtp.recorder.to("carol@example.be") == []


def test_unsubscribe_link_works_once(platform: Platform, smtp: SmtpServer) -> None:
    wire(platform, smtp)
    client = http_client(platform)
    subscribe_confirmed(client, platform, smtp, ALICE)
    platform.registry.deprecate("ocsp", "1.0", operator=OP)
    platform.mail.deliver()
    link = smtp.recorder.to(ALICE)[-1].link("unsubscribe")
    r = client.get(link)
    assert r.status_code == 200 and r.json() == {"status": "unsubscribed"}
    r = client.get(link)
    assert r.status_code == 400 and r.json()["kind"] == "challenge-invalid"
    smtp.recorder.received.clear()
    platform.registry.set_status("ocsp", "1.0", VersionStatus.ACTIVE, operator=OP)
    assert platform.mail.deliver().attempted == 0
    assert smtp.recorder.received == []


def test_one_click_unsubscribe_by_post(platform: Platform, smtp: SmtpServer) -> None:
    wire(platform, smtp)
    client = http_client(platform)
    link = subscribe(client, platform, smtp, ALICE)
    # the confirmation mail already carries an unsubscribe link (it cancels the pending subscription)
    unsubscribe_link = smtp.recorder.to(ALICE)[0].link("unsubscribe")
    assert client.post(unsubscribe_link).json() == {"status": "unsubscribed"}
    r = client.get(link)
    assert r.status_code == 400 and r.json()["kind"] == "challenge-invalid"


def test_confirmation_token_is_single_use_hashed_and_expires(
    platform: Platform, smtp: SmtpServer, clock: FixedClock
) -> None:
    wire(platform, smtp)
    client = http_client(platform)
    link = subscribe(client, platform, smtp, ALICE)
    selector, verifier = _token(link).split(".")
    with platform.rt.db.read() as s:
        row = s.execute(select(RegistryToken).where(RegistryToken.selector == selector)).scalar_one()
        # only the hash is kept; the sent mail's body (which held the link) is gone too
        assert row.verifier_sha256 == hashlib.sha256(verifier.encode()).hexdigest()
        assert verifier not in row.verifier_sha256
        assert all(verifier not in m.body for m in s.scalars(select(MailMessage)))
    tampered = f"{selector}.{verifier[:-1]}{'A' if verifier[-1] != 'A' else 'B'}"
    for bad in (tampered, "nonsense", f"{'0' * 16}.{verifier}", ""):
        r = client.get("/api/registry/subscriptions/confirm", params={"token": bad})
        assert r.status_code == 400 and r.json()["kind"] == "challenge-invalid", bad
    # an unsubscribe token is not a confirmation token
    unsubscribe_token = _token(smtp.recorder.to(ALICE)[0].link("unsubscribe"))
    r = client.get("/api/registry/subscriptions/confirm", params={"token": unsubscribe_token})
    assert r.status_code == 400

    clock.advance(timedelta(hours=48))  # the link is valid for 48 hours, the end excluded
    r = client.get(link)
    assert r.status_code == 400 and "expired" in r.json()["detail"]
    # subscribing again sends a fresh link; the old one stays dead
    smtp.recorder.received.clear()
    fresh = subscribe(client, platform, smtp, ALICE)
    assert client.get(fresh).status_code == 200
    r = client.get(fresh)
    assert r.status_code == 400 and "used already" in r.json()["detail"]
    assert client.get(link).status_code == 400


def test_resubscribing_neither_floods_nor_reveals(
    platform: Platform, smtp: SmtpServer, clock: FixedClock
) -> None:
    wire(platform, smtp)
    client = http_client(platform)
    subscribe_confirmed(client, platform, smtp, ALICE)
    subscribe(client, platform, smtp, BOB)
    smtp.recorder.received.clear()
    answers = {
        client.post("/api/registry/subscriptions", json={"email": a}).text for a in (ALICE, BOB, "new@x.be")
    }
    assert len(answers) == 1  # the same answer for confirmed, pending and unknown addresses
    platform.mail.deliver()
    assert [r.rcpt_tos for r in smtp.recorder.received] == [["new@x.be"]]
    clock.advance(timedelta(minutes=15))
    client.post("/api/registry/subscriptions", json={"email": BOB})
    platform.mail.deliver()
    assert len(smtp.recorder.to(BOB)) == 1  # a pending address gets a new link after the quiet period


def test_bad_addresses_are_refused(platform: Platform) -> None:
    client = http_client(platform)
    for bad in (
        "not-an-address",
        "a@b",
        "alice@example.be\r\nBcc: eve@example.be",
        "a" * 250 + "@example.be",
    ):
        r = client.post("/api/registry/subscriptions", json={"email": bad})
        assert r.status_code == 400 and r.json()["kind"] == "bad-request", bad
    assert client.post("/api/registry/subscriptions", json={"mail": ALICE}).status_code == 400
    with platform.rt.db.read() as s:
        assert s.scalars(select(MailMessage)).all() == []
