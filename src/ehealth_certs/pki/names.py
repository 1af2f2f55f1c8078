"""The eHealth subject DN: strict build, tolerant parse (ehealth-reference §3.5, §7).

Production encoding, first RDN first, one attribute per RDN::

    C=BE, O=Federal Government, [OU=<APPID>,] OU=<TYPE>=<ID>, OU=<NAME>, OU=eHealth-platform Belgium,
    CN=<TYPE>=<ID>[, <APPID>]

``C`` is a PrintableString, every other value a UTF8String. Parsing accepts any RDN order and string
type (the test fixtures put CN first and use PrintableString everywhere) and does not verify check
digits, so that legacy fixture numbers such as ``NIHII=00000000202`` can still be read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identifiers import IDENTIFIER_TYPES, validate_identifier

ORG_UNIT_PLATFORM: Final = "eHealth-platform Belgium"
ORGANISATION: Final = "Federal Government"
COUNTRY: Final = "BE"

# X.520 upper bounds (RFC 5280 appendix A): ub-organizational-unit-name and ub-common-name are 64.
_MAX_OU_CHARS: Final = 64

# The connector recognises the identifier OU as ``[A-Z(-|_)]+=[0-9]+``; digits are allowed after the
# first letter because the table has ``NIHII11``.
_TYPE_ID = re.compile(r"([A-Z][A-Z0-9_-]*)=([0-9]+)")
_CN = re.compile(r"([A-Z][A-Z0-9_-]*)=([0-9]+)(?:,\s*(.+))?")
_APPLICATION_ID = re.compile(r"[0-9A-Z_-]{1,30}")


@dataclass(frozen=True)
class EHealthName:
    """The identity an eHealth certificate names: an identifier, a display name, an optional application."""

    id_type: str
    id_value: str
    name: str
    application_id: str | None = None

    @property
    def is_person(self) -> bool:
        return self.id_type == "SSIN"


def normalise_text(value: str) -> str:
    """Upper-case, decompose (NFD) and drop combining marks: ``"Mélanie Dupré"`` -> ``"MELANIE DUPRE"``.

    Runs of white space become one space and the ends are trimmed, so that copies typed by people compare
    equal to the eID's.
    """
    decomposed = unicodedata.normalize("NFD", value.upper())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split())


def validate_application_id(value: str) -> str:
    """Normalise an application id and check it against ``[0-9A-Z-_]{1,30}`` (raises ``BAD_REQUEST``)."""
    normalised = normalise_text(value)
    if not _APPLICATION_ID.fullmatch(normalised):
        raise DomainError(
            ErrorKind.BAD_REQUEST,
            f"application id {value!r}: must be 1 to 30 characters among A-Z, 0-9, '-' and '_'",
        )
    return normalised


def person_name(first_name: str, last_name: str) -> str:
    """The NAME OU of a person: ``"FIRSTNAME LASTNAME"`` normalised, as built from the eID."""
    return normalise_text(f"{first_name} {last_name}")


def _validated_name(value: str) -> str:
    name = normalise_text(value)
    if not name:
        raise DomainError(ErrorKind.BAD_REQUEST, "subject name is empty")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise DomainError(ErrorKind.BAD_REQUEST, f"subject name {value!r}: contains control characters")
    if len(name) > _MAX_OU_CHARS:
        raise DomainError(ErrorKind.BAD_REQUEST, f"subject name {value!r}: longer than {_MAX_OU_CHARS}")
    return name


def _cn(id_type: str, id_value: str, application_id: str | None) -> str:
    base = f"{id_type}={id_value}"
    return f"{base}, {application_id}" if application_id else base


def build_subject(n: EHealthName) -> x509.Name:
    """Build the production subject DN for ``n`` (validates the identifier and the application id)."""
    if n.id_type not in IDENTIFIER_TYPES:
        raise DomainError(ErrorKind.BAD_IDENTIFIER, f"unknown identifier type {n.id_type!r}")
    id_value = validate_identifier(n.id_type, n.id_value)
    name = _validated_name(n.name)
    application_id: str | None = None
    if n.application_id is not None:
        if n.is_person:
            raise DomainError(ErrorKind.BAD_REQUEST, "an application id is only allowed for organisations")
        application_id = validate_application_id(n.application_id)
    type_id = f"{n.id_type}={id_value}"
    cn = _cn(n.id_type, id_value, application_id)
    if len(cn) > _MAX_OU_CHARS:
        raise DomainError(ErrorKind.BAD_REQUEST, f"common name {cn!r}: longer than {_MAX_OU_CHARS}")

    utf8 = _ASN1Type.UTF8String
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY, _type=_ASN1Type.PrintableString)]
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION, _type=utf8))
    if application_id:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, application_id, _type=utf8))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, type_id, _type=utf8))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, name, _type=utf8))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ORG_UNIT_PLATFORM, _type=utf8))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn, _type=utf8))
    return x509.Name([x509.RelativeDistinguishedName([a]) for a in attrs])


def _text(attr: x509.NameAttribute[str | bytes]) -> str:
    value = attr.value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_subject(name: x509.Name) -> EHealthName:
    """Read the eHealth identity from a subject DN, whatever the RDN order and string types.

    Rules of the connector's ``CertificateParser``: the OU shaped ``TYPE=digits`` gives the identifier
    (the CN is the fallback); an OU equal to the CN's ``, APPID`` suffix is the application id; the first
    remaining OU other than the platform's is the owner's name. An eID certificate (no ``TYPE=ID`` but a
    ``serialNumber``) is read as a person keyed by SSIN. Check digits are not verified here.
    """
    ous = [_text(a) for a in name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    cns = [_text(a) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]
    cn = cns[0].strip() if cns else ""

    id_type: str | None = None
    id_value = ""
    type_id_index = -1
    for index, ou in enumerate(ous):
        m = _TYPE_ID.fullmatch(ou.strip())
        if m:
            id_type, id_value, type_id_index = m.group(1), m.group(2), index
            break

    cn_match = _CN.fullmatch(cn)
    if id_type is None and cn_match:
        id_type, id_value = cn_match.group(1), cn_match.group(2)
    application_id = cn_match.group(3).strip() if cn_match and cn_match.group(3) else None

    if id_type is None:
        return _parse_eid_subject(name)

    skip = {ORG_UNIT_PLATFORM.casefold(), ORGANISATION.casefold()}
    owner = ""
    for index, ou in enumerate(ous):
        if index == type_id_index or ou.strip().casefold() in skip:
            continue
        if application_id is not None and ou.strip() == application_id:
            continue
        owner = ou.strip()
        break
    return EHealthName(id_type=id_type, id_value=id_value, name=owner, application_id=application_id)


def _parse_eid_subject(name: x509.Name) -> EHealthName:
    serials = name.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    serial = _text(serials[0]).strip() if serials else ""
    if not re.fullmatch(r"[0-9]{11}", serial):
        raise DomainError(ErrorKind.BAD_REQUEST, f"not an eHealth subject name: {name.rfc4514_string()!r}")
    given = [_text(a) for a in name.get_attributes_for_oid(NameOID.GIVEN_NAME)]
    surname = [_text(a) for a in name.get_attributes_for_oid(NameOID.SURNAME)]
    display = person_name(given[0], surname[0]) if given and surname else ""
    return EHealthName(id_type="SSIN", id_value=serial, name=display)


def _comparable(attr: x509.NameAttribute[str | bytes]) -> tuple[str, str]:
    value = attr.value
    # Bytes values (BIT STRING attributes) are compared as bytes, never decoded.
    text = "b:" + value.hex() if isinstance(value, bytes) else "s:" + value
    return attr.oid.dotted_string, text


def names_equal(a: x509.Name, b: x509.Name) -> bool:
    """Semantic equality: same RDNs in the same order with the same attribute types and text values.

    String types (PrintableString vs UTF8String) are ignored, unlike ``x509.Name.__eq__``.
    """
    rdns_a, rdns_b = list(a.rdns), list(b.rdns)
    if len(rdns_a) != len(rdns_b):
        return False
    for ra, rb in zip(rdns_a, rdns_b, strict=True):
        if sorted(_comparable(attr) for attr in ra) != sorted(_comparable(attr) for attr in rb):
            return False
    return True


def keystore_file_stem(n: EHealthName) -> str:
    """The keystore base file name (§9.3): ``SSIN=79121430944`` or ``CBE=0809394427,IAM``."""
    base = f"{n.id_type}={n.id_value}"
    return f"{base},{n.application_id}" if n.application_id else base
