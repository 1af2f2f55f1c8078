"""Publishing side: the platform's trust anchors as an unsigned TS 119 612 v6 trusted list.

``build_trusted_list`` turns a plain description (no database) into an lxml tree;
``pki.issuer.sign_trusted_list`` signs it; ``sha2_digest_file`` gives the ``.sha2`` companion.
Serve the signed bytes exactly as returned: never re-serialise or pretty-print a signed list.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.tsl import (
    CURRENT_STATUSES,
    MAX_LIST_PERIOD_MONTHS,
    SERVICE_CA_PKC,
    SERVICE_OCSP,
    SERVICE_TSA,
    STATUS,
    STATUS_GRANTED,
    STATUS_WITHDRAWN,
    TSL_NS,
    TSL_TAG,
    TSL_VERSION,
    XML_NS,
    add_months,
    format_time,
    q,
    sha2_digest_file,
    validate_schema,
)

__all__ = [
    "SERVICE_CA_PKC",
    "SERVICE_OCSP",
    "SERVICE_TSA",
    "STATUS_GRANTED",
    "STATUS_WITHDRAWN",
    "SchemeInfo",
    "ServiceHistoryEntry",
    "TrustService",
    "build_trusted_list",
    "sha2_digest_file",
]

# Historical statuses (ServiceHistory only) besides the current ones.
_HISTORY_STATUSES = CURRENT_STATUSES | {
    STATUS + s
    for s in (
        "undersupervision",
        "supervisionincessation",
        "supervisionceased",
        "supervisionrevoked",
        "accredited",
        "accreditationceased",
        "accreditationrevoked",
    )
}
# This is a private healthcare scheme: never claim the EU URIs (guide §2.3); operators may override.
DEFAULT_TSL_TYPE = "urn:ehealth-certs:trusted-list:type:ehealth"
DEFAULT_STATUS_DETERMINATION = "urn:ehealth-certs:trusted-list:status-determination:operator"
HISTORICAL_INFORMATION_PERIOD = 65535  # keep history forever, as the EU lists do


@dataclass(frozen=True)
class ServiceHistoryEntry:
    """A status the service held before its current one, from ``since``."""

    status: str
    since: datetime


@dataclass(frozen=True)
class TrustService:
    certificate: x509.Certificate
    service_type: str  # URI, e.g. pki.tsl.SERVICE_CA_PKC
    name: str
    status: str  # URI, e.g. STATUS_GRANTED or STATUS_WITHDRAWN
    status_since: datetime
    history: tuple[ServiceHistoryEntry, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SchemeInfo:
    operator_name: str
    scheme_name: str
    distribution_uri: str  # where tl.xml is published (DistributionPoints)
    information_uri: str  # human-readable scheme information (SchemeInformationURI, TSPInformationURI)
    environment: str  # "acceptance" / "production": part of the list Id
    territory: str = "BE"
    language: str = "en"
    street_address: str = "Quai de Willebroeck 38"
    locality: str = "Brussels"
    postal_code: str = "1000"
    country_name: str = "BE"
    electronic_address: str = "mailto:trustlist@ehealth.example"
    tsl_type: str = DEFAULT_TSL_TYPE
    status_determination: str = DEFAULT_STATUS_DETERMINATION
    community_rules_uri: str | None = None  # defaults to information_uri


_NCNAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _names(parent: etree._Element, tag: str, value: str, lang: str) -> etree._Element:
    container = etree.SubElement(parent, q(TSL_NS, tag))
    etree.SubElement(container, q(TSL_NS, "Name"), {q(XML_NS, "lang"): lang}).text = value
    return container


def _uris(parent: etree._Element, tag: str, uri: str, lang: str | None) -> None:
    container = etree.SubElement(parent, q(TSL_NS, tag))
    attrs = {q(XML_NS, "lang"): lang} if lang else {}
    etree.SubElement(container, q(TSL_NS, "URI"), attrs).text = uri


def _address(parent: etree._Element, tag: str, scheme: SchemeInfo) -> None:
    address = etree.SubElement(parent, q(TSL_NS, tag))
    postal = etree.SubElement(
        etree.SubElement(address, q(TSL_NS, "PostalAddresses")),
        q(TSL_NS, "PostalAddress"),
        {q(XML_NS, "lang"): scheme.language},
    )
    for child, value in (
        ("StreetAddress", scheme.street_address),
        ("Locality", scheme.locality),
        ("PostalCode", scheme.postal_code),
        ("CountryName", scheme.country_name),
    ):
        etree.SubElement(postal, q(TSL_NS, child)).text = value
    _uris(address, "ElectronicAddress", scheme.electronic_address, scheme.language)


def _digital_identity(parent: etree._Element, certificate: x509.Certificate) -> None:
    identity = etree.SubElement(parent, q(TSL_NS, "ServiceDigitalIdentity"))
    der = certificate.public_bytes(serialization.Encoding.DER)
    etree.SubElement(
        etree.SubElement(identity, q(TSL_NS, "DigitalId")), q(TSL_NS, "X509Certificate")
    ).text = base64.b64encode(der).decode("ascii")


def _check_service(service: TrustService) -> None:
    label = f"service {service.name!r}"
    if ":" not in service.service_type:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"{label}: service type {service.service_type!r} is not a URI"
        )
    if service.status not in CURRENT_STATUSES:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"{label}: {service.status!r} is not a current TS 119 612 status"
        )
    previous = service.status_since
    for entry in service.history:
        if entry.status not in _HISTORY_STATUSES:
            raise DomainError(ErrorKind.BAD_REQUEST, f"{label}: history status {entry.status!r} is unknown")
        if entry.since >= previous:
            raise DomainError(
                ErrorKind.BAD_REQUEST,
                f"{label}: history must be newest first and older than the current status",
            )
        previous = entry.since


def build_trusted_list(
    *,
    scheme: SchemeInfo,
    services: Sequence[TrustService],
    sequence_number: int,
    issue_time: datetime,
    next_update: datetime,
) -> etree._Element:
    """The unsigned v6 list (root ``Id`` = ``TSL-<territory>-<environment>-<sequence>``), schema-checked.

    One TSP (the platform as scheme operator) provides every service; withdrawn services stay listed
    with their history, newest status first.
    """
    if sequence_number < 1:
        raise DomainError(ErrorKind.BAD_REQUEST, f"TSLSequenceNumber must be >= 1, got {sequence_number}")
    if not issue_time < next_update <= add_months(issue_time, MAX_LIST_PERIOD_MONTHS):
        raise DomainError(
            ErrorKind.BAD_REQUEST, "NextUpdate must be after ListIssueDateTime and at most 6 months later"
        )
    for service in services:
        _check_service(service)
    lang = scheme.language
    list_id = _NCNAME_UNSAFE.sub("-", f"TSL-{scheme.territory}-{scheme.environment}-{sequence_number}")
    root = etree.Element(
        q(TSL_NS, "TrustServiceStatusList"), nsmap={None: TSL_NS}, TSLTag=TSL_TAG, Id=list_id
    )

    info = etree.SubElement(root, q(TSL_NS, "SchemeInformation"))
    etree.SubElement(info, q(TSL_NS, "TSLVersionIdentifier")).text = str(TSL_VERSION)
    etree.SubElement(info, q(TSL_NS, "TSLSequenceNumber")).text = str(sequence_number)
    etree.SubElement(info, q(TSL_NS, "TSLType")).text = scheme.tsl_type
    _names(info, "SchemeOperatorName", scheme.operator_name, lang)
    _address(info, "SchemeOperatorAddress", scheme)
    _names(info, "SchemeName", scheme.scheme_name, lang)
    _uris(info, "SchemeInformationURI", scheme.information_uri, lang)
    etree.SubElement(info, q(TSL_NS, "StatusDeterminationApproach")).text = scheme.status_determination
    _uris(info, "SchemeTypeCommunityRules", scheme.community_rules_uri or scheme.information_uri, lang)
    etree.SubElement(info, q(TSL_NS, "SchemeTerritory")).text = scheme.territory
    etree.SubElement(info, q(TSL_NS, "HistoricalInformationPeriod")).text = str(HISTORICAL_INFORMATION_PERIOD)
    etree.SubElement(info, q(TSL_NS, "ListIssueDateTime")).text = format_time(issue_time)
    etree.SubElement(
        etree.SubElement(info, q(TSL_NS, "NextUpdate")), q(TSL_NS, "dateTime")
    ).text = format_time(next_update)
    _uris(info, "DistributionPoints", scheme.distribution_uri, None)

    if services:
        tsp = etree.SubElement(
            etree.SubElement(root, q(TSL_NS, "TrustServiceProviderList")), q(TSL_NS, "TrustServiceProvider")
        )
        tsp_info = etree.SubElement(tsp, q(TSL_NS, "TSPInformation"))
        _names(tsp_info, "TSPName", scheme.operator_name, lang)
        _address(tsp_info, "TSPAddress", scheme)
        _uris(tsp_info, "TSPInformationURI", scheme.information_uri, lang)
        container = etree.SubElement(tsp, q(TSL_NS, "TSPServices"))
        for service in services:
            node = etree.SubElement(container, q(TSL_NS, "TSPService"))
            si = etree.SubElement(node, q(TSL_NS, "ServiceInformation"))
            etree.SubElement(si, q(TSL_NS, "ServiceTypeIdentifier")).text = service.service_type
            _names(si, "ServiceName", service.name, lang)
            _digital_identity(si, service.certificate)
            etree.SubElement(si, q(TSL_NS, "ServiceStatus")).text = service.status
            etree.SubElement(si, q(TSL_NS, "StatusStartingTime")).text = format_time(service.status_since)
            if service.history:
                history = etree.SubElement(node, q(TSL_NS, "ServiceHistory"))
                for entry in service.history:
                    instance = etree.SubElement(history, q(TSL_NS, "ServiceHistoryInstance"))
                    etree.SubElement(instance, q(TSL_NS, "ServiceTypeIdentifier")).text = service.service_type
                    _names(instance, "ServiceName", service.name, lang)
                    _digital_identity(instance, service.certificate)
                    etree.SubElement(instance, q(TSL_NS, "ServiceStatus")).text = entry.status
                    etree.SubElement(instance, q(TSL_NS, "StatusStartingTime")).text = format_time(
                        entry.since
                    )
    validate_schema(root)
    return root
