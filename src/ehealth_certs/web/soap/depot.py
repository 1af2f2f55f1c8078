"""SOAP 1.1 adapter of the ETK depot: ``GetEtk`` as in the official ``EtkDepot_v1.wsdl`` (reference §6).

Parsing is defensive: the body is size-limited, a DOCTYPE (and with it any entity) is refused before the
parser runs, the parser never loads DTDs or touches the network, and the ``GetEtkRequest`` element is
validated against the official XSD. Every problem becomes a SOAP ``Client`` fault with a one-line reason.

Answers follow the connector's expectations (``KeyDepotServiceImpl``): ``Status/Code`` is ``200`` whenever
the search ran, then one ``ETK``, or ``MatchingEtk`` elements, or ``Error`` elements when nothing matched. An
identifier the depot cannot read (unknown type, non-digits) answers ``Status/Code`` ``400`` with an Error.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.etkra.depot import DepotAnswer, DepotIdentifier

NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_DEPOT = "urn:be:fgov:ehealth:etkdepot:1_0:protocol"
NS_CORE = "urn:be:fgov:ehealth:commons:1_0:core"
MAX_SOAP_BYTES = 64 * 1024
MAX_IDENTIFIERS = 20
SOAP_ACTION = ""  # the WSDL binding declares no soapAction
XSD_ROOT = Path(str(resources.files("ehealth_certs") / "data" / "ehealth-xsd"))
DEPOT_XSD = XSD_ROOT / "ehealth-etee" / "XSD" / "ehealth-etkdepot-schema-protocol-1_0.xsd"
WSDL = XSD_ROOT / "wsdl" / "EtkDepot_v1.wsdl"

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
_schema_lock = threading.Lock()
_schema: etree.XMLSchema | None = None


def depot_schema() -> etree.XMLSchema:
    """The official depot schema, compiled once, offline."""
    global _schema
    with _schema_lock:
        if _schema is None:
            parser = etree.XMLParser(no_network=True, resolve_entities=False)
            _schema = etree.XMLSchema(etree.parse(str(DEPOT_XSD), parser))
        return _schema


@dataclass(frozen=True)
class RawIdentifier:
    """An identifier as the client wrote it (echoed in GivenSearchCriteria)."""

    type: str
    value: str
    application_id: str | None


def _fault_error(detail: str) -> DomainError:
    return DomainError(ErrorKind.MALFORMED_MESSAGE, detail)


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )  # fmt: skip


def parse_get_etk(body: bytes) -> list[RawIdentifier]:
    """The identifiers of a SOAP ``GetEtkRequest``; ``DomainError(MALFORMED_MESSAGE)`` for anything else."""
    if len(body) > MAX_SOAP_BYTES:
        raise DomainError(ErrorKind.PAYLOAD_TOO_LARGE, f"the SOAP message exceeds {MAX_SOAP_BYTES} bytes")
    if _DECLARATION.search(body):
        raise _fault_error("DOCTYPE and entity declarations are not accepted")
    try:
        root = etree.fromstring(body, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise _fault_error("the message is not well-formed XML") from exc
    if root.tag != f"{{{NS_SOAP}}}Envelope":
        raise _fault_error("the message is not a SOAP 1.1 Envelope")
    bodies = root.findall(f"{{{NS_SOAP}}}Body")
    if len(bodies) != 1:
        raise _fault_error("the Envelope must hold exactly one Body")
    children = [c for c in bodies[0] if isinstance(c.tag, str)]
    if len(children) != 1 or children[0].tag != f"{{{NS_DEPOT}}}GetEtkRequest":
        raise _fault_error(
            "the Body must hold exactly one GetEtkRequest of urn:be:fgov:ehealth:etkdepot:1_0:protocol"
        )
    request = children[0]
    schema = depot_schema()
    if not schema.validate(etree.ElementTree(request)):
        first = schema.error_log.last_error
        reason = first.message if first is not None else "schema violation"
        raise _fault_error(f"GetEtkRequest does not conform to the XSD: {reason[:200]}")
    out: list[RawIdentifier] = []
    for ident in request.iterfind(f"{{{NS_DEPOT}}}SearchCriteria/{{{NS_DEPOT}}}Identifier"):
        app = ident.findtext(f"{{{NS_DEPOT}}}ApplicationID")
        out.append(
            RawIdentifier(
                (ident.findtext(f"{{{NS_DEPOT}}}Type") or "").strip(),
                (ident.findtext(f"{{{NS_DEPOT}}}Value") or "").strip(),
                app.strip() if app is not None and app.strip() else None,
            )
        )
    if len(out) > MAX_IDENTIFIERS:
        raise _fault_error(f"at most {MAX_IDENTIFIERS} identifiers per request")
    return out


# -- answers: built as text (fast path), every form validated against the XSD in the tests ----------
_ENVELOPE_START = (
    f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{NS_SOAP}"><soapenv:Body>'
)
_ENVELOPE_END = "</soapenv:Body></soapenv:Envelope>"


def _identifier_xml(tag: str, ident: RawIdentifier | DepotIdentifier) -> str:
    app = f"<d:ApplicationID>{escape(ident.application_id)}</d:ApplicationID>" if ident.application_id else ""
    return f"<d:{tag}><d:Type>{escape(ident.type)}</d:Type><d:Value>{escape(ident.value)}</d:Value>{app}</d:{tag}>"


def _response(status: str, message: str, given: list[RawIdentifier], content: str) -> bytes:
    # Status/Code and Status/Message are local elements of a schema without elementFormDefault: unqualified.
    given_xml = "".join(_identifier_xml("Identifier", i) for i in given)
    return (
        _ENVELOPE_START
        + f'<d:GetEtkResponse xmlns:d="{NS_DEPOT}" xmlns:core="{NS_CORE}" Id="_{uuid.uuid4()}">'
        + f'<core:Status><Code>{status}</Code><Message Lang="EN">{escape(message)}</Message></core:Status>'
        + f"<d:GivenSearchCriteria>{given_xml}</d:GivenSearchCriteria>"
        + content
        + "</d:GetEtkResponse>"
        + _ENVELOPE_END
    ).encode("utf-8")


def found_response(given: list[RawIdentifier], answer: DepotAnswer) -> bytes:
    import base64

    if answer.etk is not None:
        content = f"<d:ETK>{base64.b64encode(answer.etk).decode('ascii')}</d:ETK>"
    else:
        content = "".join(
            f"<d:MatchingEtk>{_identifier_xml('Identifier', m)}</d:MatchingEtk>" for m in answer.matches
        )
    return _response("200", "SUCCESS", given, content)


def error_response(given: list[RawIdentifier], error: DomainError) -> bytes:
    """Nothing matched (Status 200 + Error) or the identifier is unreadable (Status 400 + Error)."""
    code = "NOT_FOUND" if error.kind is ErrorKind.NOT_FOUND else error.kind.value.upper().replace("-", "_")
    status = "200" if error.kind is ErrorKind.NOT_FOUND else "400"
    content = f"<d:Error><d:Code>{code}</d:Code><d:Message>{escape(error.detail)}</d:Message></d:Error>"
    return _response(status, "SUCCESS" if status == "200" else error.detail, given, content)


def fault(reason: str, *, server: bool = False) -> bytes:
    code = "soapenv:Server" if server else "soapenv:Client"
    return (
        _ENVELOPE_START
        + f"<soapenv:Fault><faultcode>{code}</faultcode><faultstring>{escape(reason)}</faultstring></soapenv:Fault>"
        + _ENVELOPE_END
    ).encode("utf-8")


def wsdl_for(address: str, xsd_base: str) -> bytes:
    """The official WSDL with the service address and the schema import pointing at this server."""
    text = WSDL.read_text(encoding="utf-8")
    text = text.replace("https://services-acpt.ehealth.fgov.be/EtkDepot/v1", escape(address, {'"': "&quot;"}))
    text = text.replace(
        'schemaLocation="../ehealth-etee/XSD/',
        f'schemaLocation="{escape(xsd_base, {chr(34): "&quot;"})}/ehealth-etee/XSD/',
    )
    return text.encode("utf-8")


def xsd_file(relative: str) -> bytes:
    """A schema file of the served set (only ``*.xsd`` below ``data/ehealth-xsd``; no path escapes)."""
    if (
        not relative.endswith(".xsd")
        or "\\" in relative
        or any(p in ("", ".", "..") for p in relative.split("/"))
    ):
        raise DomainError(ErrorKind.NOT_FOUND, "no such schema")
    path = (XSD_ROOT / relative).resolve()
    if XSD_ROOT.resolve() not in path.parents or not path.is_file():
        raise DomainError(ErrorKind.NOT_FOUND, "no such schema")
    return path.read_bytes()
