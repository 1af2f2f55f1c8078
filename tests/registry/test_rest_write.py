"""The registry's REST write side: operator tokens only (401 + WWW-Authenticate otherwise, audited),
the same service calls as the CLI (change, audit event and subscriber mails in one transaction)."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.testclient import TestClient

from ehealth_certs.clock import FixedClock
from ehealth_certs.identity.operators import OperatorTokens
from ehealth_certs.platform import Platform
from ehealth_certs.registry.service import TOPIC_CHANGE
from ehealth_certs.storage.models import AuditEvent
from ehealth_certs.storage.models.registry import MailMessage
from tests.notify.smtp_server import SmtpServer
from tests.ra.helpers import http_client
from tests.registry.conftest import wire
from tests.registry.helpers import subscribe_confirmed

ALICE = "alice@example.be"
XSD = b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:ab"/>'
SERVICES = "/api/registry/services"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(platform: Platform, name: str = "ci-deploy", **kw: Any) -> str:
    return OperatorTokens(platform.rt).create(name, operator="operator:root", **kw).token


def _audit(platform: Platform, action: str) -> list[AuditEvent]:
    with platform.rt.db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def _change_mails(platform: Platform) -> list[MailMessage]:
    with platform.rt.db.read() as s:
        return list(
            s.scalars(select(MailMessage).where(MailMessage.topic == TOPIC_CHANGE).order_by(MailMessage.id))
        )


def _version_body(version: str = "1.0") -> dict[str, Any]:
    return {
        "version": version,
        "notes": "first release",
        "endpoints": {
            "production": {"rest": "https://ab.example.be/v1"},
            "acceptance": {"rest": "https://ab-acpt.example.be/v1"},
        },
        "documents": [
            {
                "path": "xsd/ab-1_0.xsd",
                "content_b64": base64.b64encode(XSD).decode(),
                "media_type": "application/xml",
            }
        ],
    }


WRITES: list[tuple[str, str]] = [
    ("POST", SERVICES),
    ("POST", f"{SERVICES}/etkdepot/versions"),
    ("PUT", f"{SERVICES}/etkdepot/versions/1.0/endpoints/production"),
    ("POST", f"{SERVICES}/etkdepot/versions/1.0/status"),
]


def _assert_401(r: Any) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["kind"] == "unauthenticated"


def test_every_write_refuses_without_a_valid_token_and_audits_it(
    platform: Platform, clock: FixedClock
) -> None:
    client = http_client(platform)
    revoked = _token(platform, "old")
    OperatorTokens(platform.rt).revoke("old", operator="operator:root")
    expiring = _token(platform, "short", valid_for=timedelta(days=1))
    clock.advance(timedelta(days=1))
    before = platform.registry.service("etkdepot")
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "operator/unknown"),
        (_bearer("ehcop_" + "A" * 43), "operator/unknown"),
        ({"Authorization": "Basic b3A6cHc="}, "operator/unknown"),
        ({"Authorization": f"Token {expiring}"}, "operator/unknown"),  # not the Bearer scheme
        (_bearer(revoked), "operator/old"),
        (_bearer(expiring), "operator/short"),
    ]
    for method, path in WRITES:
        for headers, _ in cases:
            _assert_401(client.request(method, path, json={"status": "deprecated"}, headers=headers))
    failures = _audit(platform, "auth.failed")
    assert [f.object for f in failures] == [obj for _ in WRITES for _, obj in cases]
    assert all(f.actor == "anonymous" and f.outcome == "failure" for f in failures)
    assert platform.registry.service("etkdepot") == before
    assert platform.registry.list_services() == client.get(SERVICES).json()


def test_the_token_is_checked_before_the_body_is_read(platform: Platform) -> None:
    client = http_client(platform)
    huge = b"x" * (platform.rt.settings.max_request_bytes + 1)
    _assert_401(client.post(SERVICES, content=huge))
    r = client.post(SERVICES, content=huge, headers=_bearer(_token(platform)))
    assert r.status_code == 413 and r.json()["kind"] == "payload-too-large"


def test_writes_are_visible_in_the_read_api_and_mail_the_subscribers(
    platform: Platform, clock: FixedClock, smtp: SmtpServer
) -> None:
    wire(platform, smtp)
    client = http_client(platform)
    subscribe_confirmed(client, platform, smtp, ALICE)
    auth = _bearer(_token(platform))

    r = client.post(
        SERVICES,
        json={
            "name": "addressbook",
            "title": "Addressbook",
            "description": "Who works where",
            "documentation": ["https://docs.example.be/addressbook"],
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{SERVICES}/addressbook"
    service = client.get(f"{SERVICES}/addressbook").json()
    assert service["owner"] == "ci-deploy" and service["protocol"] == "REST"
    assert service["documentation"] == ["https://docs.example.be/addressbook"]
    assert _change_mails(platform) == []  # a service without a version is announced with its first version

    r = client.post(f"{SERVICES}/addressbook/versions", json=_version_body(), headers=auth)
    assert r.status_code == 201, r.text
    (v,) = client.get(f"{SERVICES}/addressbook").json()["versions"]
    assert v["status"] == "active" and v["notes"] == "first release"
    assert v["endpoints"] == {
        "acceptance": {"rest": "https://ab-acpt.example.be/v1"},
        "production": {"rest": "https://ab.example.be/v1"},
    }
    (doc,) = v["documents"]
    assert doc["path"] == "xsd/ab-1_0.xsd" and doc["mediaType"] == "application/xml"
    served = client.get(f"{SERVICES}/addressbook/versions/1.0/documents/xsd/ab-1_0.xsd")
    assert served.status_code == 200 and served.content == XSD
    assert served.headers["content-type"].startswith("application/xml")

    clock.advance(timedelta(hours=1))
    r = client.put(
        f"{SERVICES}/addressbook/versions/1.0/endpoints/production",
        json={"url": "https://ab.example.be/v1.1"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["versions"][0]["endpoints"]["production"] == {"rest": "https://ab.example.be/v1.1"}

    r = client.post(
        f"{SERVICES}/addressbook/versions/1.0/status",
        json={"status": "deprecated", "note": "use 2.0"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    (v,) = client.get(f"{SERVICES}/addressbook").json()["versions"]
    assert v["status"] == "deprecated" and v["statusSince"] == clock.now().isoformat()

    # each change, its audit event (actor: the token's name) and its mail: one transaction each
    subjects = [m.subject for m in _change_mails(platform)]
    assert subjects == [
        "[ehealth-certs] addressbook 1.0: new version",
        "[ehealth-certs] addressbook 1.0: production URL changed",
        "[ehealth-certs] addressbook 1.0: deprecated",
    ]
    assert all(m.recipient == ALICE for m in _change_mails(platform))
    with platform.rt.db.read() as s:
        events = s.execute(
            select(AuditEvent.actor, AuditEvent.action)
            .where(AuditEvent.object.like("registry/addressbook%"))
            .order_by(AuditEvent.seq)
        ).all()
    assert [tuple(e) for e in events] == [
        ("ci-deploy", "registry.service.added"),
        ("ci-deploy", "registry.version.added"),
        ("ci-deploy", "registry.url.changed"),
        ("ci-deploy", "registry.status.changed"),
    ]
    assert platform.mail.deliver().sent == 3
    mails = smtp.recorder.to(ALICE)
    assert "https://ab.example.be/v1 -> https://ab.example.be/v1.1" in mails[-2].body
    assert "note: use 2.0" in mails[-1].body


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("POST", SERVICES, {"name": "etkdepot", "title": "again"}, 409, "conflict"),
        ("POST", SERVICES, {"name": "Bad Name", "title": "x"}, 400, "bad-request"),
        ("POST", SERVICES, {"name": "ok-name", "title": "x", "descripton": "typo"}, 400, "bad-request"),
        ("POST", SERVICES, {"name": "ok-name", "title": "x" * 201}, 400, "bad-request"),
        ("POST", SERVICES, {"name": "ok-name", "title": "nul\x00"}, 400, "bad-request"),
        (
            "POST",
            SERVICES,
            {"name": "ok-name", "title": "x", "documentation": "http://a"},
            400,
            "bad-request",
        ),
        ("POST", f"{SERVICES}/nope/versions", {"version": "1.0"}, 404, "not-found"),
        ("POST", f"{SERVICES}/etkdepot/versions", {"version": "1.0"}, 409, "conflict"),
        (
            "POST",
            f"{SERVICES}/etkdepot/versions",
            {"version": "2.0", "documents": [{"path": "a.xsd", "content_b64": "!!"}]},
            400,
            "bad-request",
        ),
        (
            "POST",
            f"{SERVICES}/etkdepot/versions",
            {"version": "2.0", "endpoints": {"staging": {"rest": "https://x.example.be"}}},
            400,
            "bad-request",
        ),
        (
            "POST",
            f"{SERVICES}/etkdepot/versions",
            {"version": "2.0", "documents": [{"path": "../a.xsd", "content_b64": ""}]},
            400,
            "bad-request",
        ),
        (
            "PUT",
            f"{SERVICES}/etkdepot/versions/1.0/endpoints/staging",
            {"url": "https://x.be"},
            404,
            "not-found",
        ),
        (
            "PUT",
            f"{SERVICES}/etkdepot/versions/1.0/endpoints/production",
            {"url": "ftp://x"},
            400,
            "bad-request",
        ),
        (
            "PUT",
            f"{SERVICES}/etkdepot/versions/9.9/endpoints/production",
            {"url": "https://x.be"},
            404,
            "not-found",
        ),
        ("POST", f"{SERVICES}/etkdepot/versions/1.0/status", {"status": "draft"}, 409, "invalid-transition"),
        ("POST", f"{SERVICES}/etkdepot/versions/1.0/status", {"status": "gone"}, 400, "bad-request"),
        ("POST", f"{SERVICES}/etkdepot/versions/1.0/status", {}, 400, "bad-request"),
    ],
)
def test_bad_writes_are_refused_with_their_kind_and_change_nothing(
    platform: Platform, method: str, path: str, body: dict[str, Any], status: int, kind: str
) -> None:
    client = http_client(platform)
    before = client.get(SERVICES).json()
    r = client.request(method, path, json=body, headers=_bearer(_token(platform)))
    assert r.status_code == status, r.text
    assert r.json()["kind"] == kind
    assert client.get(SERVICES).json() == before
    assert _change_mails(platform) == []


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_field = st.sampled_from(
    ["name", "title", "protocol", "description", "documentation", "version", "endpoints", "documents",
     "status", "notes", "url", "binding", "note", "path", "content_b64"]
)  # fmt: skip
_bodies = st.one_of(
    st.dictionaries(_field, _json, max_size=6),
    st.fixed_dictionaries(
        {"version": st.text(max_size=8)},
        optional={
            "endpoints": st.dictionaries(
                st.sampled_from(["production", "acceptance", "x"]),
                st.dictionaries(st.sampled_from(["rest", "soap", "ftp"]), _json, max_size=2),
                max_size=2,
            ),
            "documents": st.lists(
                st.fixed_dictionaries(
                    {"path": st.text(max_size=20), "content_b64": st.text(max_size=40)},
                    optional={"media_type": _json},
                ),
                max_size=2,
            ),
        },
    ),
    _json,
)


@pytest.fixture
def fuzz_client(platform: Platform) -> TestClient:
    # function-scoped: built once per test function, then shared by every example Hypothesis runs
    client = http_client(platform)
    client.headers.update(_bearer(_token(platform, "fuzz")))
    return client


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(WRITES), body=_bodies, raw=st.none() | st.binary(max_size=60))
def test_random_bodies_never_give_a_server_error(
    fuzz_client: TestClient, route: tuple[str, str], body: Any, raw: bytes | None
) -> None:
    method, path = route
    kw: dict[str, Any] = {"content": raw} if raw is not None else {"json": body}
    r = fuzz_client.request(method, path, **kw)
    assert r.status_code < 500, r.text
    assert r.status_code != 401, r.text  # the token is valid: every answer judges the body
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"
