"""The ETK depot over SOAP 1.1: official WSDL/XSD conformance of every answer, faults for bad input, zeep."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree

from ehealth_certs.pki.etk import parse_etk
from ehealth_certs.web.soap import depot as soap
from tests.ra.helpers import CONTACT, add_doctor, http_client, keystore_dir, manager

SSIN = "79121430944"
NS = {"s": soap.NS_SOAP, "d": soap.NS_DEPOT, "core": soap.NS_CORE}

XXE = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'

pytestmark = pytest.mark.usefixtures("trust_citizen_ca")


def request_xml(*identifiers: tuple[str, str, str | None], extra: str = "") -> bytes:
    idents = "".join(
        f"<d:Identifier><d:Type>{t}</d:Type><d:Value>{v}</d:Value>"
        + (f"<d:ApplicationID>{a}</d:ApplicationID>" if a else "")
        + "</d:Identifier>"
        for t, v, a in identifiers
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{extra}'
        f'<soapenv:Envelope xmlns:soapenv="{soap.NS_SOAP}" xmlns:d="{soap.NS_DEPOT}"><soapenv:Body>'
        f"<d:GetEtkRequest><d:SearchCriteria>{idents}</d:SearchCriteria></d:GetEtkRequest>"
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def body_of(xml: bytes) -> etree._Element:
    """The Body child, after checking the envelope; a GetEtkResponse is validated against the official XSD."""
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == f"{{{soap.NS_SOAP}}}Envelope"
    (body,) = root.findall("s:Body", NS)
    (child,) = list(body)
    if child.tag == f"{{{soap.NS_DEPOT}}}GetEtkResponse":
        schema = soap.depot_schema()
        assert schema.validate(etree.ElementTree(child)), schema.error_log
    return child


def status_code(response: etree._Element) -> str:
    return response.findtext("core:Status/Code", namespaces=NS) or ""


@pytest.fixture
def enrolled(platform, clock, eid_factory, tmp_path: Path):
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    outcome = manager(platform, clock).request(
        person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT
    )
    return outcome


def test_get_etk_one_match_not_found_and_bad_identifier(platform, enrolled) -> None:
    client = http_client(platform)
    # a value without its zero padding still finds the ETK (SSIN padded to 11 digits)
    r = client.post(
        "/EtkDepot/v1", content=request_xml(("SSIN", SSIN, None)), headers={"Content-Type": "text/xml"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    resp = body_of(r.content)
    assert status_code(resp) == "200"
    etk = parse_etk(base64.b64decode(resp.findtext("d:ETK", namespaces=NS) or ""))
    assert str(etk.encryption_certificate.serial_number) == enrolled.etk_serial
    given = resp.find("d:GivenSearchCriteria/d:Identifier", NS)
    assert given is not None and given.findtext("d:Value", namespaces=NS) == SSIN
    # acceptance has no ETK for this person: Status 200 with an Error (the connector's "unable to find")
    r = client.post("/acceptance/EtkDepot/v1", content=request_xml(("SSIN", SSIN, None)))
    resp = body_of(r.content)
    assert status_code(resp) == "200" and resp.find("d:ETK", NS) is None
    assert resp.findtext("d:Error/d:Code", namespaces=NS) == "NOT_FOUND"
    # an unknown identifier type: Status 400 with an Error, still a valid response
    r = client.post("/EtkDepot/v1", content=request_xml(("NOPE", "1", None)))
    resp = body_of(r.content)
    assert status_code(resp) == "400"
    assert resp.findtext("d:Error/d:Code", namespaces=NS) == "BAD_IDENTIFIER"
    # escaping: markup in a value is echoed as text, the answer stays valid
    r = client.post("/EtkDepot/v1", content=request_xml(("SSIN", "&lt;x&gt;", None)))
    resp = body_of(r.content)
    assert resp.findtext("d:GivenSearchCriteria/d:Identifier/d:Value", namespaces=NS) == "<x>"


def test_several_application_ids_answer_matching_etks(platform, clock, eid_factory, tmp_path: Path) -> None:
    from ehealth_certs.ra.sources import add_mandate, import_organisations

    cbe = "0809394427"
    import_organisations(
        platform.rt, f"type,number,name\nCBE,{cbe},EHEALTH-PLATFORM\n".encode(), operator="op:t"
    )
    add_mandate(platform.rt, ssin=SSIN, id_type="CBE", number=cbe, operator="op:t")
    person = eid_factory(SSIN, tmp=tmp_path)
    m = manager(platform, clock)
    for app in ("KGSS", "ETKDEPOT"):
        o = m.request(person.card, keystore_dir=keystore_dir(tmp_path) / app, password="pw", contact=CONTACT,
                      organization=("CBE", cbe), application_id=app)  # fmt: skip
        if not o.delivered:
            req = next(
                r
                for r in platform.certra.list_requests()
                if r["publicKeyIdentifier"] == o.public_key_identifier
            )
            platform.certra.approve(req["id"], "operator:alice")
            m.complete(o.keystore, "pw")
    client = http_client(platform)
    resp = body_of(client.post("/EtkDepot/v1", content=request_xml(("CBE", "809394427", None))).content)
    assert status_code(resp) == "200"
    apps = [
        e.findtext("d:Identifier/d:ApplicationID", namespaces=NS) for e in resp.findall("d:MatchingEtk", NS)
    ]
    assert apps == ["ETKDEPOT", "KGSS"]
    values = {e.findtext("d:Identifier/d:Value", namespaces=NS) for e in resp.findall("d:MatchingEtk", NS)}
    assert values == {cbe}
    resp = body_of(client.post("/EtkDepot/v1", content=request_xml(("CBE", cbe, "KGSS"))).content)
    assert resp.find("d:ETK", NS) is not None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not xml at all", "well-formed"),
        (b"<a/>", "SOAP 1.1 Envelope"),
        (
            f'<s:Envelope xmlns:s="{soap.NS_SOAP}"><s:Body><x/></s:Body></s:Envelope>'.encode(),
            "GetEtkRequest",
        ),
        (request_xml(), "XSD"),  # SearchCriteria without any Identifier
        (request_xml(("SSIN", "1", None)).replace(b"<d:Type>", b"<d:Bogus/><d:Type>"), "XSD"),
        (request_xml(("SSIN", "&xxe;", None), extra=XXE), "DOCTYPE"),
        (request_xml(("SSIN", "1", None), extra="<!doctype x>"), "DOCTYPE"),
    ],
)
def test_malformed_requests_get_a_soap_fault(platform, payload: bytes, reason: str) -> None:
    r = http_client(platform).post("/EtkDepot/v1", content=payload)
    assert r.status_code == 500
    fault = body_of(r.content)
    assert fault.tag == f"{{{soap.NS_SOAP}}}Fault"
    assert fault.findtext("faultcode") == "soapenv:Client"
    assert reason in (fault.findtext("faultstring") or "")
    assert "Traceback" not in r.text and "/etc/passwd" not in r.text.replace("file:///etc/passwd", "")


def test_oversized_request_is_refused_unparsed(platform) -> None:
    big = request_xml(("SSIN", "1" * (soap.MAX_SOAP_BYTES + 10), None))
    r = http_client(platform).post("/EtkDepot/v1", content=big)
    assert r.status_code == 413
    assert body_of(r.content).tag == f"{{{soap.NS_SOAP}}}Fault"


def test_wsdl_names_this_server_and_its_schemas_resolve(platform) -> None:
    client = http_client(platform)
    base = platform.rt.settings.base_url
    for path in ("/EtkDepot/v1", "/acceptance/EtkDepot/v1"):
        r = client.get(path + "?wsdl")
        assert r.status_code == 200
        wsdl = etree.fromstring(r.content)
        (address,) = wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert address.get("location") == base + path
        (imp,) = wsdl.iter("{http://www.w3.org/2001/XMLSchema}import")
        location = imp.get("schemaLocation") or ""
        assert location.startswith(base + "/ehealth-xsd/")
        xsd = client.get(location.removeprefix(base))
        assert xsd.status_code == 200 and b"GetEtkRequest" in xsd.content
    assert (
        client.get("/ehealth-xsd/ehealth-commons/XSD/ehealth-commons-schema-core-1_0.xsd").status_code == 200
    )
    for bad in (
        "/ehealth-xsd/../../../etc/passwd",
        "/ehealth-xsd/wsdl/EtkDepot_v1.wsdl",
        "/ehealth-xsd/x.xsd",
    ):
        assert client.get(bad).status_code == 404
    assert client.get("/EtkDepot/v1").status_code == 400
