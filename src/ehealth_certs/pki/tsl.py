"""ETSI TS 119 612 trusted lists: pure XML work (schema, signature input, verification).

No database, no settings, no wall clock: every function takes ``now`` or the signing time as an argument.
The signature itself is produced by ``pki/issuer.py`` (``sign_trusted_list``), which asks this module for
the canonical SignedInfo bytes (``prepare_signature``) and hands the raw signature back (``SignatureDraft``).

The signature shape follows ``shared/docs/trusted-list-guide.md`` §4/§6: one enveloped XAdES baseline-B
signature, exclusive c14n everywhere, two references (the list by ``#<root Id>`` with the enveloped and
exc-c14n transforms, the SignedProperties with an explicit exc-c14n transform), ``SigningTime`` and
``SigningCertificateV2`` (v6) and a KeyInfo holding only the signer's ``X509Certificate``.

Verification is our own (lxml c14n + cryptography) rather than a library's, because every check of the
consumer checklist (§8) needs the structure anyway; the tests use xmlsec1 and python-xmlsec as judges.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import ExtensionOID
from lxml import etree

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.signing import SignatureScheme

# -- vocabulary -------------------------------------------------------------------------------------
TSL_NS = "http://uri.etsi.org/02231/v2#"
TSLX_NS = "http://uri.etsi.org/02231/v2/additionaltypes#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
XML_NS = "http://www.w3.org/XML/1998/namespace"

TSL_TAG = "http://uri.etsi.org/19612/TSLTag"
TSL_VERSION = 6
ACCEPTED_VERSIONS = (5, 6)
TSL_MIME_TYPE = "application/vnd.etsi.tsl+xml"
OID_TSL_SIGNING = x509.ObjectIdentifier("0.4.0.2231.3.0")

SVC_TYPE = "http://uri.etsi.org/TrstSvc/Svctype/"
SERVICE_CA_PKC = SVC_TYPE + "CA/PKC"
SERVICE_CA_QC = SVC_TYPE + "CA/QC"
SERVICE_OCSP = SVC_TYPE + "Certstatus/OCSP"
SERVICE_CRL = SVC_TYPE + "Certstatus/CRL"
SERVICE_TSA = SVC_TYPE + "TSA"
SERVICE_UNSPECIFIED = SVC_TYPE + "unspecified"
# The official URI really is spelt "TrstSvd" (TS 119 612 and eHealth both use it).
SERVICE_TL_ISSUER = "http://uri.etsi.org/TrstSvd/Svctype/TLIssuer"

STATUS = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/"
STATUS_GRANTED = STATUS + "granted"
STATUS_WITHDRAWN = STATUS + "withdrawn"
CURRENT_STATUSES = frozenset(
    STATUS + s
    for s in (
        "granted",
        "withdrawn",
        "recognisedatnationallevel",
        "deprecatedatnationallevel",
        "setbynationallaw",
        "deprecatedbynationallaw",
    )
)
# Statuses under which a service's certificate is a trust anchor.
TRUSTED_STATUSES = frozenset(
    {STATUS_GRANTED, STATUS + "recognisedatnationallevel", STATUS + "setbynationallaw"}
)

C14N_EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
TRANSFORM_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

_DIGESTS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
_SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

_RSA_SIG = "http://www.w3.org/2001/04/xmldsig-more#rsa-"
_ECDSA_SIG = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-"
_SIGNATURE_METHODS: dict[str, tuple[str, Callable[[], hashes.HashAlgorithm]]] = {
    _RSA_SIG + "sha256": ("rsa", hashes.SHA256),
    _RSA_SIG + "sha384": ("rsa", hashes.SHA384),
    _RSA_SIG + "sha512": ("rsa", hashes.SHA512),
    _ECDSA_SIG + "sha256": ("ecdsa", hashes.SHA256),
    _ECDSA_SIG + "sha384": ("ecdsa", hashes.SHA384),
    _ECDSA_SIG + "sha512": ("ecdsa", hashes.SHA512),
}
_SCHEME_TO_METHOD = {
    SignatureScheme.RSA_PKCS1_SHA256: _RSA_SIG + "sha256",
    SignatureScheme.ECDSA_SHA256: _ECDSA_SIG + "sha256",
}

MIN_SIGNING_RSA_BITS = 3072  # guide §4.1: new TL signer keys
MIN_VERIFY_RSA_BITS = 2048  # real lists (FI test signer) still use 2048
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_LIST_PERIOD_MONTHS = 6


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def tsl_path(*names: str) -> str:
    """An ElementPath of TSL-namespace steps."""
    return "/".join(q(TSL_NS, n) for n in names)


# -- schema -----------------------------------------------------------------------------------------
_XSD_ORDER = (
    "xml.xsd",
    "xmldsig-core-schema.xsd",
    "XAdES01903v132-202407.xsd",
    "XAdES01903v141-202407.xsd",
    "ts_119612v020401_xsd.xsd",
    "ts_119612v020401_sie_xsd.xsd",
    "ts_119612v020401_additionaltypes_xsd.xsd",
)
_CATALOG = "{urn:oasis:names:tc:entity:xmlns:xml:catalog}"


def xsd_directory() -> Path:
    """The packaged copy of the ETSI/W3C schema set (``ehealth_certs/data/etsi-xsd``)."""
    return Path(str(resources.files("ehealth_certs").joinpath("data", "etsi-xsd")))


class _LocalOnlyResolver(etree.Resolver):  # type: ignore[misc]
    """Maps the schemas' remote import URLs to the packaged files and refuses every other fetch."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        catalog = etree.parse(str(directory / "catalog.xml"), _safe_parser()).getroot()
        self._map: dict[str, str] = {}
        for entry in catalog:
            if entry.tag in (_CATALOG + "uri", _CATALOG + "system"):
                self._map[entry.get("name") or entry.get("systemId")] = str(directory / entry.get("uri"))

    def resolve(self, url: str, pubid: str | None, context: Any) -> Any:
        if url in self._map:
            return self.resolve_filename(self._map[url], context)
        if "://" in url and not url.startswith("file:"):
            raise OSError(f"refusing network fetch of {url}")
        return None


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    directory = xsd_directory()
    namespaces = {
        f: etree.parse(str(directory / f), _safe_parser()).getroot().get("targetNamespace")
        for f in _XSD_ORDER
    }
    # libxml2 skips a later import of a namespace it already holds, so importing every file here first
    # turns the schemas' own remote imports into no-ops and validates XAdES content too.
    body = "".join(f'<xs:import namespace="{namespaces[f]}" schemaLocation="{f}"/>' for f in _XSD_ORDER)
    parser = _safe_parser()
    parser.resolvers.add(_LocalOnlyResolver(directory))
    wrapper = etree.fromstring(
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{body}</xs:schema>',
        parser,
        base_url=str(directory / "wrapper.xsd"),
    )
    return etree.XMLSchema(etree.ElementTree(wrapper))


_SCHEMA_LOCK = threading.Lock()  # an lxml XMLSchema keeps its error log per object


def validate_schema(root: etree._Element) -> None:
    """Validate against the TS 119 612 v2.4.1 schema set, offline. MALFORMED_MESSAGE names the first error."""
    schema = _schema()
    with _SCHEMA_LOCK:
        if schema.validate(root):
            return
        err = schema.error_log.last_error
    raise DomainError(
        ErrorKind.MALFORMED_MESSAGE,
        f"trusted list is not valid against the TS 119 612 schema: line {err.line}: {err.message}",
    )


def parse_list(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._ElementTree:
    """Parse untrusted bytes: size cap, no DTD, no entities, no network; root must be a TSL."""
    if len(xml) > max_bytes:
        raise DomainError(
            ErrorKind.PAYLOAD_TOO_LARGE, f"trusted list is {len(xml)} bytes, above the limit of {max_bytes}"
        )
    try:
        tree = etree.ElementTree(etree.fromstring(xml, _safe_parser()))
    except etree.XMLSyntaxError as exc:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, f"trusted list is not well-formed XML: {exc}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, "trusted list carries a DOCTYPE; DTDs are refused")
    root = tree.getroot()
    if root.tag != q(TSL_NS, "TrustServiceStatusList"):
        raise DomainError(
            ErrorKind.MALFORMED_MESSAGE, f"root element is {root.tag}, not a TrustServiceStatusList"
        )
    return tree


# -- helpers ----------------------------------------------------------------------------------------
def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise DomainError(ErrorKind.BAD_REQUEST, "trusted-list times must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None, what: str) -> datetime:
    if not text:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, f"{what} is missing")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, f"{what} is not a dateTime: {text!r}") from exc
    # TS 119 612 requires UTC; a zone-less value is read as UTC rather than local time.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def add_months(value: datetime, months: int) -> datetime:
    month0 = value.month - 1 + months
    year, month = value.year + month0 // 12, month0 % 12 + 1
    days = [
        31,
        29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28,
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ]
    return value.replace(year=year, month=month, day=min(value.day, days[month - 1]))


def c14n_exclusive(element: etree._Element) -> bytes:
    return bytes(etree.tostring(element, method="c14n", exclusive=True, with_comments=False))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except ValueError as exc:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, f"{what} is not valid base64") from exc


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def sha2_digest_file(xml_bytes: bytes) -> bytes:
    """Content of the ``.sha2`` file next to the list: lowercase hex SHA-256 of the exact bytes, then LF.

    Consumers (``parse_sha2_file``) also accept upper case, surrounding whitespace and the 32 raw bytes
    some publishers serve (guide §4.2).
    """
    return hashlib.sha256(xml_bytes).hexdigest().encode("ascii") + b"\n"


def parse_sha2_file(content: bytes) -> str:
    """The SHA-256 announced by a ``.sha2`` file, as lowercase hex."""
    if len(content) == 32 and not all(chr(b) in "0123456789abcdefABCDEF" for b in content):
        return content.hex()
    text = content.strip().decode("ascii", errors="replace").lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise DomainError(
            ErrorKind.MALFORMED_MESSAGE, "the .sha2 file is neither 64 hex characters nor 32 bytes"
        )
    return text


# -- signer certificate profile (TS 119 612 clause 5.7.1) --------------------------------------------
def signer_profile_problems(certificate: x509.Certificate, *, min_rsa_bits: int) -> list[str]:
    """Everything wrong with ``certificate`` as a trusted-list signer; empty when it fits the profile."""
    problems: list[str] = []
    exts = certificate.extensions
    try:
        if exts.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append("BasicConstraints CA is true")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = exts.get_extension_for_class(x509.KeyUsage).value
        if not (ku.digital_signature or ku.content_commitment):
            problems.append("KeyUsage lacks digitalSignature/nonRepudiation")
        others = [ku.key_encipherment, ku.data_encipherment, ku.key_agreement, ku.key_cert_sign, ku.crl_sign]
        if any(others):
            problems.append("KeyUsage allows more than digitalSignature/nonRepudiation")
    except x509.ExtensionNotFound:
        problems.append("KeyUsage is missing")
    try:
        if OID_TSL_SIGNING not in exts.get_extension_for_class(x509.ExtendedKeyUsage).value:
            problems.append("ExtendedKeyUsage lacks id-tsl-kp-tslSigning (0.4.0.2231.3.0)")
    except x509.ExtensionNotFound:
        problems.append("ExtendedKeyUsage with id-tsl-kp-tslSigning (0.4.0.2231.3.0) is missing")
    try:
        exts.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    except x509.ExtensionNotFound:
        problems.append("SubjectKeyIdentifier is missing")
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < min_rsa_bits:
            problems.append(f"RSA key of {key.key_size} bits is below {min_rsa_bits}")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            problems.append(f"EC curve {key.curve.name} is not accepted")
    else:
        problems.append(f"{type(key).__name__} keys are not accepted for trusted-list signatures")
    return problems


def _issuer_serial_v2(certificate: x509.Certificate) -> bytes:
    """DER of the RFC 5035 IssuerSerial: GeneralNames{directoryName issuer}, serial."""
    from asn1crypto import tsp
    from asn1crypto import x509 as ax

    name = ax.Name.load(certificate.issuer.public_bytes())
    general = ax.GeneralName(name="directory_name", value=name)
    der: bytes = tsp.IssuerSerial(
        {"issuer": ax.GeneralNames([general]), "serial_number": certificate.serial_number}
    ).dump()
    return der


# -- signature input --------------------------------------------------------------------------------
def _enveloped_input(root: etree._Element, signature: etree._Element | None) -> bytes:
    """Exc-c14n of the root element with ``signature`` removed (the enveloped-signature transform)."""
    work = copy.deepcopy(root)
    if signature is not None:
        index = list(root).index(signature)
        target = work[index]
        # lxml drops an element's tail with it; the transform removes only the element.
        if target.tail:
            previous = target.getprevious()
            if previous is not None:
                previous.tail = (previous.tail or "") + target.tail
            else:
                work.text = (work.text or "") + target.tail
        work.remove(target)
    return c14n_exclusive(work)


def _digest(algorithm_uri: str, data: bytes) -> bytes:
    h = hashes.Hash(_DIGESTS[algorithm_uri]())
    h.update(data)
    return h.finalize()


@dataclass
class SignatureDraft:
    """An unsigned Signature in place: ``to_be_signed`` is the exc-c14n of SignedInfo.

    ``complete`` takes the raw value from ``Signer.sign`` (DER for ECDSA) and returns the final bytes.
    """

    tree: etree._ElementTree
    signature_value: etree._Element
    to_be_signed: bytes
    scheme: SignatureScheme
    key_bytes: int
    public_key: Any

    def complete(self, raw_signature: bytes) -> bytes:
        value = raw_signature
        if self.scheme is SignatureScheme.ECDSA_SHA256:
            # XML-DSig carries ECDSA as the fixed-width concatenation r || s, not DER.
            r, s = decode_dss_signature(raw_signature)
            value = r.to_bytes(self.key_bytes, "big") + s.to_bytes(self.key_bytes, "big")
        try:
            _verify_value(_SCHEME_TO_METHOD[self.scheme], self.public_key, value, self.to_be_signed)
        except DomainError as exc:
            raise DomainError(
                ErrorKind.INTERNAL, "the trusted-list signature does not verify under the signer certificate"
            ) from exc
        self.signature_value.text = _b64(value)
        validate_schema(self.tree.getroot())
        return bytes(etree.tostring(self.tree, xml_declaration=True, encoding="UTF-8"))


def prepare_signature(
    root: etree._Element,
    *,
    signer_certificate: x509.Certificate,
    scheme: SignatureScheme,
    signing_time: datetime,
) -> SignatureDraft:
    """Build the XAdES baseline-B Signature for an unsigned list; the caller signs ``to_be_signed``."""
    if root.tag != q(TSL_NS, "TrustServiceStatusList"):
        raise DomainError(
            ErrorKind.BAD_REQUEST, "only a TrustServiceStatusList can be signed as a trusted list"
        )
    if root.find(f".//{q(DS_NS, 'Signature')}") is not None:
        raise DomainError(ErrorKind.BAD_REQUEST, "the trusted list is already signed")
    list_id = root.get("Id")
    if not list_id:
        raise DomainError(ErrorKind.BAD_REQUEST, "the trusted list root has no Id to reference")
    if scheme not in _SCHEME_TO_METHOD:
        raise DomainError(
            ErrorKind.CONFIGURATION, f"signature scheme {scheme} is not supported for trusted lists"
        )
    problems = signer_profile_problems(signer_certificate, min_rsa_bits=MIN_SIGNING_RSA_BITS)
    if problems:
        raise DomainError(ErrorKind.CONFIGURATION, "trusted-list signer certificate: " + "; ".join(problems))
    if not signer_certificate.not_valid_before_utc <= signing_time <= signer_certificate.not_valid_after_utc:
        raise DomainError(ErrorKind.EXPIRED, "signing time is outside the trusted-list signer's validity")
    validate_schema(root)

    token = uuid.uuid4().hex
    sig_id, sp_id, ref_id = f"sig-{token}", f"sig-{token}-xades", f"sig-{token}-ref-list"
    work = copy.deepcopy(root)
    ds = {"ds": DS_NS}
    signature = etree.SubElement(work, q(DS_NS, "Signature"), nsmap=ds, Id=sig_id)
    signed_info = etree.SubElement(signature, q(DS_NS, "SignedInfo"))
    etree.SubElement(signed_info, q(DS_NS, "CanonicalizationMethod"), Algorithm=C14N_EXC)
    etree.SubElement(signed_info, q(DS_NS, "SignatureMethod"), Algorithm=_SCHEME_TO_METHOD[scheme])

    def reference(uri: str, transforms: Sequence[str], **attrs: str) -> etree._Element:
        ref = etree.SubElement(signed_info, q(DS_NS, "Reference"), **attrs)
        ref.set("URI", uri)
        tr = etree.SubElement(ref, q(DS_NS, "Transforms"))
        for algorithm in transforms:
            etree.SubElement(tr, q(DS_NS, "Transform"), Algorithm=algorithm)
        etree.SubElement(ref, q(DS_NS, "DigestMethod"), Algorithm=DIGEST_SHA256)
        return etree.SubElement(ref, q(DS_NS, "DigestValue"))

    reference(f"#{list_id}", [TRANSFORM_ENVELOPED, C14N_EXC], Id=ref_id)
    # The explicit exc-c14n transform is what signxml forgets (guide §6); without it verifiers use C14N 1.0.
    reference(f"#{sp_id}", [C14N_EXC], Type=SIGNED_PROPERTIES_TYPE)
    etree.SubElement(signature, q(DS_NS, "SignatureValue"), Id=f"{sig_id}-value")
    key_info = etree.SubElement(signature, q(DS_NS, "KeyInfo"))
    x509_data = etree.SubElement(key_info, q(DS_NS, "X509Data"))
    cert_der = signer_certificate.public_bytes(serialization.Encoding.DER)
    etree.SubElement(x509_data, q(DS_NS, "X509Certificate")).text = _b64(cert_der)

    obj = etree.SubElement(signature, q(DS_NS, "Object"))
    qp = etree.SubElement(
        obj, q(XADES_NS, "QualifyingProperties"), nsmap={"xades": XADES_NS}, Target=f"#{sig_id}"
    )
    sp = etree.SubElement(qp, q(XADES_NS, "SignedProperties"), Id=sp_id)
    ssp = etree.SubElement(sp, q(XADES_NS, "SignedSignatureProperties"))
    etree.SubElement(ssp, q(XADES_NS, "SigningTime")).text = format_time(signing_time)
    cert = etree.SubElement(etree.SubElement(ssp, q(XADES_NS, "SigningCertificateV2")), q(XADES_NS, "Cert"))
    cert_digest = etree.SubElement(cert, q(XADES_NS, "CertDigest"))
    etree.SubElement(cert_digest, q(DS_NS, "DigestMethod"), Algorithm=DIGEST_SHA256)
    etree.SubElement(cert_digest, q(DS_NS, "DigestValue")).text = _b64(hashlib.sha256(cert_der).digest())
    etree.SubElement(cert, q(XADES_NS, "IssuerSerialV2")).text = _b64(_issuer_serial_v2(signer_certificate))
    sdop = etree.SubElement(sp, q(XADES_NS, "SignedDataObjectProperties"))
    dof = etree.SubElement(sdop, q(XADES_NS, "DataObjectFormat"), ObjectReference=f"#{ref_id}")
    etree.SubElement(dof, q(XADES_NS, "MimeType")).text = "text/xml"

    # Digest what a verifier will parse, not the in-memory tree: serialise once and parse back.
    tree = etree.ElementTree(etree.fromstring(etree.tostring(work, encoding="UTF-8"), _safe_parser()))
    signature = tree.getroot()[-1]
    signed_info = signature[0]
    refs = signed_info.findall(q(DS_NS, "Reference"))
    refs[0].find(q(DS_NS, "DigestValue")).text = _b64(
        _digest(DIGEST_SHA256, _enveloped_input(tree.getroot(), signature))
    )
    sp_node = signature.find(
        f"{q(DS_NS, 'Object')}/{q(XADES_NS, 'QualifyingProperties')}/{q(XADES_NS, 'SignedProperties')}"
    )
    refs[1].find(q(DS_NS, "DigestValue")).text = _b64(_digest(DIGEST_SHA256, c14n_exclusive(sp_node)))
    public_key = signer_certificate.public_key()
    key_bytes = (
        (public_key.curve.key_size + 7) // 8 if isinstance(public_key, ec.EllipticCurvePublicKey) else 0
    )
    return SignatureDraft(
        tree=tree,
        signature_value=signature.find(q(DS_NS, "SignatureValue")),
        to_be_signed=c14n_exclusive(signed_info),
        scheme=scheme,
        key_bytes=key_bytes,
        public_key=public_key,
    )


# -- verification -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ListedService:
    """One current service of a verified list."""

    service_type: str
    name: str
    status: str
    status_since: datetime
    certificates: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class VerifiedList:
    sequence_number: int
    issue_time: datetime
    next_update: datetime
    certificates: list[tuple[str, x509.Certificate, str]]  # (service type URI, certificate, status URI)
    signer: x509.Certificate
    version: int = TSL_VERSION
    territory: str | None = None
    list_id: str | None = None
    signing_time: datetime | None = None
    sha256: str = ""
    services: list[ListedService] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def trust_anchors(self, service_types: Sequence[str] | None = None) -> list[x509.Certificate]:
        """Certificates of services whose status grants trust, deduplicated, optionally by service type."""
        seen: dict[bytes, x509.Certificate] = {}
        for service_type, certificate, status in self.certificates:
            if status in TRUSTED_STATUSES and (service_types is None or service_type in service_types):
                seen.setdefault(certificate.fingerprint(hashes.SHA256()), certificate)
        return list(seen.values())


def _text(node: etree._Element | None) -> str | None:
    return None if node is None or node.text is None else node.text.strip()


def _one(
    parent: etree._Element, path: str, what: str, kind: ErrorKind = ErrorKind.BAD_SIGNATURE
) -> etree._Element:
    found = parent.findall(path)
    if len(found) != 1:
        raise DomainError(kind, f"expected exactly one {what}, found {len(found)}")
    node: etree._Element = found[0]
    return node


def _load_certificate(text: str | None, what: str) -> x509.Certificate:
    der = _b64decode(text, what)
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, f"{what} is not a DER X.509 certificate") from exc


def _by_id(tree_root: etree._Element, value: str) -> list[etree._Element]:
    return [el for el in tree_root.iter() if isinstance(el.tag, str) and el.get("Id") == value]


def _check_transforms(ref: etree._Element, expected: Sequence[str], what: str) -> None:
    transforms = ref.findall(f"{q(DS_NS, 'Transforms')}/{q(DS_NS, 'Transform')}")
    algorithms = [t.get("Algorithm") for t in transforms]
    if algorithms != list(expected) or any(len(t) for t in transforms):
        raise DomainError(
            ErrorKind.BAD_SIGNATURE,
            f"{what} reference transforms are {algorithms}, expected exactly {list(expected)}",
        )


def _verify_value(method: str, public_key: Any, value: bytes, data: bytes) -> None:
    family, hash_factory = _SIGNATURE_METHODS[method]
    try:
        if family == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(value, data, padding.PKCS1v15(), hash_factory())
        elif family == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            size = (public_key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                raise InvalidSignature
            der = encode_dss_signature(
                int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big")
            )
            public_key.verify(der, data, ec.ECDSA(hash_factory()))
        else:
            raise DomainError(
                ErrorKind.BAD_SIGNATURE, f"SignatureMethod {method} does not match the signer's key type"
            )
    except InvalidSignature as exc:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, "SignatureValue does not verify with the signer's key"
        ) from exc


def _check_signing_certificate(ssp: etree._Element, signer: x509.Certificate, version: int) -> None:
    v1 = ssp.findall(q(XADES_NS, "SigningCertificate"))
    v2 = ssp.findall(q(XADES_NS, "SigningCertificateV2"))
    if version >= 6 and (v1 or len(v2) != 1):
        raise DomainError(
            ErrorKind.BAD_SIGNATURE,
            "a v6 list needs exactly one SigningCertificateV2 and no SigningCertificate",
        )
    if len(v1) + len(v2) != 1:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "expected exactly one SigningCertificate(V2) property")
    prop = (v1 or v2)[0]
    certs = prop.findall(q(XADES_NS, "Cert"))
    der = signer.public_bytes(serialization.Encoding.DER)
    for cert in certs:
        method = cert.find(f"{q(XADES_NS, 'CertDigest')}/{q(DS_NS, 'DigestMethod')}")
        value = cert.find(f"{q(XADES_NS, 'CertDigest')}/{q(DS_NS, 'DigestValue')}")
        algorithm = method.get("Algorithm") if method is not None else None
        if algorithm in _DIGESTS:
            computed = _digest(str(algorithm), der)
        elif algorithm == _SHA1 and version < 6:
            # Only legacy v5 lists (the EU LOTL of 2019) use SHA-1 here; the pin is byte equality anyway.
            computed = hashlib.sha1(der, usedforsecurity=False).digest()
        else:
            raise DomainError(ErrorKind.BAD_SIGNATURE, f"CertDigest algorithm {algorithm} is not accepted")
        if _b64decode(_text(value), "CertDigest") != computed:
            continue
        serial_text = _text(cert.find(f"{q(XADES_NS, 'IssuerSerial')}/{q(DS_NS, 'X509SerialNumber')}"))
        if serial_text is not None and serial_text != str(signer.serial_number):
            raise DomainError(
                ErrorKind.BAD_SIGNATURE, "SigningCertificate IssuerSerial does not name the signer"
            )
        v2_serial = cert.find(q(XADES_NS, "IssuerSerialV2"))
        if v2_serial is not None and _b64decode(_text(v2_serial), "IssuerSerialV2") != _issuer_serial_v2(
            signer
        ):
            raise DomainError(
                ErrorKind.BAD_SIGNATURE, "SigningCertificateV2 IssuerSerialV2 does not name the signer"
            )
        return
    raise DomainError(ErrorKind.BAD_SIGNATURE, "no SigningCertificate digest matches the KeyInfo certificate")


def _verify_signature(
    tree: etree._ElementTree,
    pinned: Sequence[x509.Certificate],
    now: datetime,
    version: int,
    enforce_signer_profile: bool,
) -> tuple[x509.Certificate, datetime]:
    root = tree.getroot()
    signatures = list(root.iter(q(DS_NS, "Signature")))
    if len(signatures) != 1:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"expected exactly one ds:Signature, found {len(signatures)}"
        )
    signature = signatures[0]
    if signature.getparent() is not root:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the ds:Signature is not a child of the list root")
    signed_info = _one(signature, q(DS_NS, "SignedInfo"), "SignedInfo")
    c14n = _one(signed_info, q(DS_NS, "CanonicalizationMethod"), "CanonicalizationMethod")
    if c14n.get("Algorithm") != C14N_EXC or len(c14n):
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"SignedInfo canonicalisation {c14n.get('Algorithm')} is not exc-c14n"
        )
    method = _one(signed_info, q(DS_NS, "SignatureMethod"), "SignatureMethod").get("Algorithm") or ""
    if method not in _SIGNATURE_METHODS:
        raise DomainError(ErrorKind.BAD_SIGNATURE, f"SignatureMethod {method} is not accepted")
    refs = signed_info.findall(q(DS_NS, "Reference"))
    if len(refs) != 2:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"expected 2 references (list, SignedProperties), found {len(refs)}"
        )
    sp_refs = [r for r in refs if r.get("Type") == SIGNED_PROPERTIES_TYPE]
    list_refs = [r for r in refs if r.get("Type") != SIGNED_PROPERTIES_TYPE]
    if len(sp_refs) != 1 or len(list_refs) != 1:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the references must be one list and one SignedProperties")
    list_ref, sp_ref = list_refs[0], sp_refs[0]

    # 1. The signer is pinned: compare the KeyInfo certificate byte for byte before any crypto work.
    key_certs = signature.findall(
        f"{q(DS_NS, 'KeyInfo')}/{q(DS_NS, 'X509Data')}/{q(DS_NS, 'X509Certificate')}"
    )
    if len(key_certs) != 1:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"KeyInfo must hold exactly one X509Certificate, found {len(key_certs)}"
        )
    signer = _load_certificate(key_certs[0].text, "KeyInfo X509Certificate")
    signer_der = signer.public_bytes(serialization.Encoding.DER)
    if not any(p.public_bytes(serialization.Encoding.DER) == signer_der for p in pinned):
        raise DomainError(
            ErrorKind.UNTRUSTED_SIGNER,
            f"list signer {signer.subject.rfc4514_string()} (SHA-256 {fingerprint(signer)}) is not pinned",
        )

    # 2. The list reference covers the whole root.
    uri = list_ref.get("URI")
    root_id = root.get("Id")
    if uri == "":
        if any(isinstance(s, etree._ProcessingInstruction) for s in root.itersiblings(preceding=True)):
            raise DomainError(
                ErrorKind.BAD_SIGNATURE, "processing instructions outside the root are not supported"
            )
    elif not (uri and root_id and uri == f"#{root_id}"):
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"the list reference URI {uri!r} does not designate the list root"
        )
    if root_id and len(_by_id(root, root_id)) != 1:
        raise DomainError(ErrorKind.BAD_SIGNATURE, f"Id {root_id!r} is not unique in the document")
    _check_transforms(list_ref, [TRANSFORM_ENVELOPED, C14N_EXC], "list")

    # 3. SignedProperties reference designates this signature's own SignedProperties.
    sp_uri = sp_ref.get("URI") or ""
    targets = _by_id(root, sp_uri[1:]) if sp_uri.startswith("#") else []
    if len(targets) != 1:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"SignedProperties reference {sp_uri!r} does not resolve to one element"
        )
    sp = targets[0]
    qp = sp.getparent()
    if (
        sp.tag != q(XADES_NS, "SignedProperties")
        or qp is None
        or qp.tag != q(XADES_NS, "QualifyingProperties")
        or qp.getparent() is None
        or qp.getparent().getparent() is not signature
    ):
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, "the SignedProperties reference points outside this signature"
        )
    if signature.get("Id") and qp.get("Target") != f"#{signature.get('Id')}":
        raise DomainError(ErrorKind.BAD_SIGNATURE, "QualifyingProperties Target does not name this signature")
    _check_transforms(sp_ref, [C14N_EXC], "SignedProperties")

    # 4. Digests, then the signature value over the canonical SignedInfo.
    digest_inputs: list[tuple[etree._Element, Callable[[], bytes]]] = [
        (list_ref, lambda: _enveloped_input(root, signature)),
        (sp_ref, lambda: c14n_exclusive(sp)),
    ]
    for ref, data in digest_inputs:
        digest_method = _one(ref, q(DS_NS, "DigestMethod"), "DigestMethod").get("Algorithm") or ""
        if digest_method not in _DIGESTS:
            raise DomainError(ErrorKind.BAD_SIGNATURE, f"DigestMethod {digest_method} is not accepted")
        expected = _b64decode(_text(_one(ref, q(DS_NS, "DigestValue"), "DigestValue")), "DigestValue")
        if _digest(digest_method, data()) != expected:
            what = "list" if ref is list_ref else "SignedProperties"
            raise DomainError(
                ErrorKind.BAD_SIGNATURE,
                f"digest mismatch on the {what} reference: content changed after signing",
            )
    value = _b64decode(_text(_one(signature, q(DS_NS, "SignatureValue"), "SignatureValue")), "SignatureValue")
    _verify_value(method, signer.public_key(), value, c14n_exclusive(signed_info))

    # 5. XAdES properties.
    ssp = _one(sp, q(XADES_NS, "SignedSignatureProperties"), "SignedSignatureProperties")
    _check_signing_certificate(ssp, signer, version)
    signing_time = parse_time(_text(ssp.find(q(XADES_NS, "SigningTime"))), "SigningTime")
    if signing_time > now:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"SigningTime {format_time(signing_time)} is in the future"
        )
    if not signer.not_valid_before_utc <= signing_time <= signer.not_valid_after_utc:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "SigningTime is outside the signer certificate's validity")

    # 6. Signer certificate: time and profile.
    if not signer.not_valid_before_utc <= now <= signer.not_valid_after_utc:
        raise DomainError(
            ErrorKind.EXPIRED,
            f"list signer certificate is valid {format_time(signer.not_valid_before_utc)} to "
            f"{format_time(signer.not_valid_after_utc)}, not at {format_time(now)}",
        )
    if enforce_signer_profile:
        problems = signer_profile_problems(signer, min_rsa_bits=MIN_VERIFY_RSA_BITS)
        if problems:
            raise DomainError(ErrorKind.UNTRUSTED_SIGNER, "list signer profile: " + "; ".join(problems))
    return signer, signing_time


def _services(root: etree._Element) -> list[ListedService]:
    out: list[ListedService] = []
    for info in root.iterfind(
        tsl_path(
            "TrustServiceProviderList",
            "TrustServiceProvider",
            "TSPServices",
            "TSPService",
            "ServiceInformation",
        )
    ):
        certs = tuple(
            _load_certificate(node.text, "ServiceDigitalIdentity X509Certificate")
            for node in info.iterfind(tsl_path("ServiceDigitalIdentity", "DigitalId", "X509Certificate"))
        )
        out.append(
            ListedService(
                service_type=_text(info.find(q(TSL_NS, "ServiceTypeIdentifier"))) or "",
                name=_text(info.find(f"{q(TSL_NS, 'ServiceName')}/{q(TSL_NS, 'Name')}")) or "",
                status=_text(info.find(q(TSL_NS, "ServiceStatus"))) or "",
                status_since=parse_time(
                    _text(info.find(q(TSL_NS, "StatusStartingTime"))), "StatusStartingTime"
                ),
                certificates=certs,
            )
        )
    return out


def verify_trusted_list(
    xml: bytes,
    *,
    pinned_signers: Sequence[x509.Certificate],
    now: datetime,
    max_bytes: int = DEFAULT_MAX_BYTES,
    installed_sequence: int | None = None,
    expected_territory: str | None = None,
    expected_tsl_type: str | None = None,
    enforce_signer_profile: bool = True,
) -> VerifiedList:
    """Run the consumer checklist (guide §8, steps 2–13) on untrusted bytes and return the verified content.

    Raises ``DomainError``: PAYLOAD_TOO_LARGE (size), MALFORMED_MESSAGE (parsing, schema, version, tag,
    dates inconsistent), UNTRUSTED_SIGNER (not pinned, bad profile), BAD_SIGNATURE (structure, digests,
    value, XAdES properties), EXPIRED (signer or list outside its validity at ``now``) and REPLAY
    (sequence number not above ``installed_sequence``).
    ``enforce_signer_profile=False`` is only for lists whose signers are announced elsewhere (the EU LOTL)
    or test-signed fixtures; the pin is still enforced.
    """
    if now.tzinfo is None:
        raise DomainError(ErrorKind.BAD_REQUEST, "now must be timezone-aware")
    if not pinned_signers:
        raise DomainError(ErrorKind.UNTRUSTED_SIGNER, "no pinned trusted-list signer configured")
    tree = parse_list(xml, max_bytes=max_bytes)
    root = tree.getroot()
    validate_schema(root)
    info = root.find(q(TSL_NS, "SchemeInformation"))
    assert info is not None  # guaranteed by the schema
    version = int(_text(info.find(q(TSL_NS, "TSLVersionIdentifier"))) or 0)
    if version not in ACCEPTED_VERSIONS:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, f"TSLVersionIdentifier {version} is not 5 or 6")
    if root.get("TSLTag") != TSL_TAG:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, f"TSLTag {root.get('TSLTag')!r} is not {TSL_TAG}")
    territory = _text(info.find(q(TSL_NS, "SchemeTerritory")))
    if expected_territory is not None and territory != expected_territory:
        raise DomainError(
            ErrorKind.MALFORMED_MESSAGE, f"SchemeTerritory {territory!r} is not {expected_territory!r}"
        )
    tsl_type = _text(info.find(q(TSL_NS, "TSLType")))
    if expected_tsl_type is not None and tsl_type != expected_tsl_type:
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, f"TSLType {tsl_type!r} is not {expected_tsl_type!r}")

    signer, signing_time = _verify_signature(tree, pinned_signers, now, version, enforce_signer_profile)

    # Everything below reads the tree whose bytes the signature just covered.
    sequence = int(_text(info.find(q(TSL_NS, "TSLSequenceNumber"))) or 0)
    issue = parse_time(_text(info.find(q(TSL_NS, "ListIssueDateTime"))), "ListIssueDateTime")
    next_text = _text(info.find(f"{q(TSL_NS, 'NextUpdate')}/{q(TSL_NS, 'dateTime')}"))
    if next_text is None:
        raise DomainError(ErrorKind.EXPIRED, "the list is closed (no NextUpdate); it cannot be installed")
    next_update = parse_time(next_text, "NextUpdate")
    if issue > now:
        raise DomainError(ErrorKind.EXPIRED, f"ListIssueDateTime {format_time(issue)} is in the future")
    if next_update <= now:
        raise DomainError(ErrorKind.EXPIRED, f"the list expired at its NextUpdate {format_time(next_update)}")
    if next_update > add_months(issue, MAX_LIST_PERIOD_MONTHS):
        raise DomainError(
            ErrorKind.MALFORMED_MESSAGE, "NextUpdate is more than 6 months after ListIssueDateTime"
        )
    warnings: list[str] = []
    if installed_sequence is not None:
        if sequence <= installed_sequence:
            raise DomainError(
                ErrorKind.REPLAY,
                f"TSLSequenceNumber {sequence} is not above the installed one ({installed_sequence})",
            )
        if sequence > installed_sequence + 1:
            warnings.append(f"sequence number jumped from {installed_sequence} to {sequence}")

    services = _services(root)
    return VerifiedList(
        sequence_number=sequence,
        issue_time=issue,
        next_update=next_update,
        certificates=[(s.service_type, c, s.status) for s in services for c in s.certificates],
        signer=signer,
        version=version,
        territory=territory,
        list_id=root.get("Id"),
        signing_time=signing_time,
        sha256=hashlib.sha256(xml).hexdigest(),
        services=services,
        warnings=warnings,
    )


def pointer_signers(
    parent_list_xml: bytes,
    territory: str,
    *,
    parent_pinned_signers: Sequence[x509.Certificate],
    now: datetime,
    mime_type: str = TSL_MIME_TYPE,
    enforce_parent_signer_profile: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[x509.Certificate]:
    """The signer certificates a verified parent list (e.g. the EU LOTL) announces for ``territory``'s list.

    The parent is verified first (pinned to ``parent_pinned_signers``); its signer profile is not enforced by
    default because LOTL signers are announced in the Official Journal, not by the TL-signer profile.
    """
    verify_trusted_list(
        parent_list_xml,
        pinned_signers=parent_pinned_signers,
        now=now,
        max_bytes=max_bytes,
        enforce_signer_profile=enforce_parent_signer_profile,
    )
    root = parse_list(parent_list_xml, max_bytes=max_bytes).getroot()
    found: dict[bytes, x509.Certificate] = {}
    matched = False
    for pointer in root.iterfind(
        f"{q(TSL_NS, 'SchemeInformation')}/{q(TSL_NS, 'PointersToOtherTSL')}/{q(TSL_NS, 'OtherTSLPointer')}"
    ):
        others = pointer.findall(f"{q(TSL_NS, 'AdditionalInformation')}/{q(TSL_NS, 'OtherInformation')}/*")
        territories = {_text(o) for o in others if o.tag == q(TSL_NS, "SchemeTerritory")}
        mimes = {_text(o) for o in others if o.tag == q(TSLX_NS, "MimeType")}
        if territory not in territories or mime_type not in mimes:
            continue
        matched = True
        for node in pointer.iterfind(
            tsl_path("ServiceDigitalIdentities", "ServiceDigitalIdentity", "DigitalId", "X509Certificate")
        ):
            cert = _load_certificate(node.text, "pointer X509Certificate")
            found.setdefault(cert.fingerprint(hashes.SHA256()), cert)
    if not matched:
        raise DomainError(
            ErrorKind.NOT_FOUND, f"the parent list has no {mime_type} pointer for territory {territory}"
        )
    if not found:
        raise DomainError(
            ErrorKind.UNTRUSTED_SIGNER, f"the parent list's pointer for {territory} names no certificate"
        )
    return list(found.values())
