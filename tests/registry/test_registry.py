"""Service registry: built-in services, catalogue over REST, documents, operator changes and their mails."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from lxml import etree
from sqlalchemy import func, select

from ehealth_certs.clock import FixedClock
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.platform import Platform
from ehealth_certs.registry import VersionStatus
from ehealth_certs.storage.models import AuditEvent
from ehealth_certs.storage.models.registry import MailMessage, RegistryVersion
from tests.notify.smtp_server import SmtpServer
from tests.paths import SHARED
from tests.ra.helpers import http_client
from tests.registry.conftest import wire
from tests.registry.helpers import subscribe_confirmed

BASE = "http://127.0.0.1:8443"
XSD_DIR = SHARED / "data" / "ehealth-xsd"
OP = "operator:alice"


def _count(platform: Platform, model: type) -> int:
    with platform.rt.db.read() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_platform_services_are_registered_at_start_with_their_urls(platform: Platform) -> None:
    names = {s["name"] for s in platform.registry.list_services()}
    assert names == {"certra", "etkra", "etkdepot", "ocsp", "crl", "trusted-list"}
    depot = platform.registry.service("etkdepot")
    (v1,) = depot["versions"]
    assert v1["version"] == "1.0" and v1["status"] == "active"
    assert v1["endpoints"]["production"] == {
        "soap": f"{BASE}/EtkDepot/v1",
        "rest": f"{BASE}/api/production/etkdepot",
    }
    assert v1["endpoints"]["acceptance"]["rest"] == f"{BASE}/api/acceptance/etkdepot"
    assert f"{BASE}/EtkDepot/v1?wsdl" in depot["documentation"]
    expect = {
        "certra": ("rest", "/api/{env}/certra"),
        "etkra": ("rest", "/api/{env}/etkra"),
        "ocsp": ("http", "/pki/{env}/ocsp"),
        "crl": ("http", "/pki/{env}/crl"),
        "trusted-list": ("http", "/tsl/{env}.xml"),
    }
    for name, (binding, pattern) in expect.items():
        (v,) = platform.registry.service(name)["versions"]
        for env in Environment:
            assert v["endpoints"][env.value] == {binding: BASE + pattern.format(env=env.value)}, name
    # the official files, byte for byte
    paths = {d["path"] for d in v1["documents"]}
    assert (
        "wsdl/EtkDepot_v1.wsdl" in paths
        and "ehealth-etee/XSD/ehealth-etkdepot-schema-protocol-1_0.xsd" in paths
    )
    for path in paths:
        doc = platform.registry.document("etkdepot", "1.0", path)
        assert doc.content == (XSD_DIR / path).read_bytes()
        assert doc.sha256 == hashlib.sha256(doc.content).hexdigest()


def test_registration_at_start_is_idempotent(platform: Platform, clock: FixedClock) -> None:
    versions, events = _count(platform, RegistryVersion), _count(platform, AuditEvent)
    again = Platform.start(platform.rt.settings, clock, create_pki=False)
    try:
        assert again.registry.register_platform_services() == []
        assert _count(platform, RegistryVersion) == versions
        assert _count(platform, AuditEvent) == events
        assert _count(platform, MailMessage) == 0
    finally:
        again.close()


def test_new_base_url_is_a_url_change_mailed_once_per_service(platform: Platform, smtp: SmtpServer) -> None:
    wire(platform, smtp)
    client = http_client(platform)
    subscribe_confirmed(client, platform, smtp, "integrator@example.be")
    platform.rt.settings.public_base_url = "https://certs.example.be"
    changes = platform.registry.register_platform_services()
    assert {c.service for c in changes} == {"certra", "etkra", "etkdepot", "ocsp", "crl", "trusted-list"}
    assert platform.registry.register_platform_services() == []  # the second sync finds nothing to do
    assert platform.mail.deliver().sent == 6
    mails = smtp.recorder.to("integrator@example.be")
    certra = [m for m in mails if m.message["Subject"].startswith("[ehealth-certs] certra 2.0")]
    assert len(certra) == 1
    assert certra[0].message["Subject"] == "[ehealth-certs] certra 2.0: platform configuration changed"
    assert "https://certs.example.be/api/registry/subscriptions/unsubscribe?token=" in certra[0].body
    assert f"{BASE}/api/production/certra -> https://certs.example.be/api/production/certra" in certra[0].body


def test_catalogue_over_rest(platform: Platform) -> None:
    client = http_client(platform)
    r = client.get("/api/registry/services")
    assert r.status_code == 200
    row = next(s for s in r.json() if s["name"] == "etkdepot")
    assert row["versions"] == [{"version": "1.0", "status": "active"}]
    r = client.get("/api/registry/services/etkdepot")
    assert r.status_code == 200 and r.json()["protocol"] == "SOAP"
    r = client.get("/api/registry/services/nope")
    assert r.status_code == 404 and r.json()["kind"] == "not-found"
    # writes need an operator token (tests/registry/test_rest_write.py)
    assert client.post("/api/registry/services", json={"name": "x"}).status_code == 401


def test_documents_are_served_as_files_and_their_relative_imports_resolve(platform: Platform) -> None:
    client = http_client(platform)
    service = client.get("/api/registry/services/etkdepot").json()
    wsdl = next(d for d in service["versions"][0]["documents"] if d["path"].endswith(".wsdl"))
    seen: set[str] = set()
    todo = [wsdl["url"]]
    while todo:  # follow every relative schemaLocation as a client resolving the WSDL would
        url = todo.pop()
        r = client.get(urlsplit(url).path)
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith("application/xml")
        assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
        seen.add(url)
        tree = etree.fromstring(r.content)
        for loc in tree.xpath("//*[local-name()='import' or local-name()='include']/@schemaLocation"):
            if not loc.startswith("http"):
                target = urljoin(url, loc)
                if target not in seen:
                    todo.append(target)
    assert len(seen) == 4
    # a validator can compile the served protocol schema with its imports
    etree.XMLSchema(etree.parse(str(XSD_DIR / "ehealth-etee/XSD/ehealth-etkdepot-schema-protocol-1_0.xsd")))
    etag = client.get(urlsplit(wsdl["url"]).path).headers["etag"]
    assert client.get(urlsplit(wsdl["url"]).path, headers={"If-None-Match": etag}).status_code == 304
    base = "/api/registry/services/etkdepot/versions/1.0/documents/"
    assert client.get(base + "wsdl/missing.wsdl").status_code == 404
    assert client.get(base + "..%2F..%2Fservices").status_code == 404


def test_operator_changes_and_their_state_machine(
    platform: Platform, clock: FixedClock, tmp_path: Path
) -> None:
    reg = platform.registry
    reg.add_service(
        name="addressbook",
        title="Addressbook",
        protocol="REST",
        description="Who is who",
        documentation=["https://docs.example.be/addressbook"],
        operator=OP,
    )
    with pytest.raises(DomainError) as e:
        reg.add_service(name="addressbook", title="again", protocol="REST", operator=OP)
    assert e.value.kind is ErrorKind.CONFLICT
    xsd = b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>'
    reg.add_version(
        "addressbook",
        "1.0",
        endpoints={(Environment.PRODUCTION, "rest"): "https://ab.example.be/v1"},
        documents={"xsd/ab-1_0.xsd": xsd},
        operator=OP,
    )
    assert reg.document("addressbook", "1.0", "xsd/ab-1_0.xsd").content == xsd
    for bad in ({"../x.xsd": xsd}, {"a.exe": b"MZ"}, {"a.xsd": b"<not-closed>"}):
        with pytest.raises(DomainError) as e:
            reg.add_version("addressbook", "1.1", endpoints={}, documents=bad, operator=OP)
        assert e.value.kind is ErrorKind.BAD_REQUEST
    # a refused document rolls the whole version back
    assert [v["version"] for v in reg.service("addressbook")["versions"]] == ["1.0"]
    with pytest.raises(DomainError) as e:
        reg.set_url("addressbook", "1.0", Environment.PRODUCTION, "ftp://ab.example.be", operator=OP)
    assert e.value.kind is ErrorKind.BAD_REQUEST
    clock.advance(timedelta(days=1))
    reg.deprecate("addressbook", "1.0", operator=OP, note="use 2.0")
    (v,) = reg.service("addressbook")["versions"]
    assert v["status"] == "deprecated" and v["statusSince"] == clock.now().isoformat()
    reg.set_status("addressbook", "1.0", VersionStatus.RETIRED, operator=OP)
    with pytest.raises(DomainError) as e:
        reg.set_status("addressbook", "1.0", VersionStatus.ACTIVE, operator=OP)
    assert e.value.kind is ErrorKind.INVALID_TRANSITION
    with pytest.raises(DomainError) as e:
        reg.deprecate("addressbook", "9.9", operator=OP)
    assert e.value.kind is ErrorKind.NOT_FOUND
    with platform.rt.db.read() as s:
        actions = s.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object.like("registry/addressbook%"))
            .order_by(AuditEvent.seq)
        ).all()
    assert actions == [
        "registry.service.added",
        "registry.version.added",
        "registry.status.changed",
        "registry.status.changed",
    ]
