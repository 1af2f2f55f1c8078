"""CRL builder (RFC 5280 §5): the to-be-signed ``TBSCertList`` written directly in DER, no signing here.

Why not ``cryptography``'s ``CertificateRevocationListBuilder``: each ``add_revoked_certificate`` copies the
builder's list (quadratic) and builds one Python object per entry; a 1,000,000-entry CRL would not fit the
90 s budget. Writing the entries' bytes takes about 2 µs each.

Shape (quality-bar §2.2): v2; issuer name bytes copied from the CA certificate; thisUpdate/nextUpdate as
given; ``revokedCertificates`` omitted entirely when empty; entries carry a reasonCode extension unless the
reason is unknown (``None``: BR SC-061 says omit rather than write ``unspecified``); CRL extensions are
AKI (keyIdentifier = the CA's SKI) and CRLNumber. ``pki/issuer.py`` signs the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from ehealth_certs.pki import der

REASON_CODES: dict[x509.ReasonFlags, int] = {
    x509.ReasonFlags.unspecified: 0,
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6,
    x509.ReasonFlags.remove_from_crl: 8,
    x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}

# BR §7.2.2 / SC-061: reasons allowed on a subscriber-certificate CRL (no unspecified, no hold).
SUBSCRIBER_CRL_REASONS = frozenset(
    {
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.affiliation_changed,
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
        x509.ReasonFlags.privilege_withdrawn,
    }
)
# On an ARL (CRL of CA certificates) cACompromise is allowed as well.
CA_CRL_REASONS = SUBSCRIBER_CRL_REASONS | {x509.ReasonFlags.ca_compromise}

OID_REASON_CODE = der.oid("2.5.29.21")
OID_CRL_NUMBER = der.oid("2.5.29.20")
OID_AUTHORITY_KEY_IDENTIFIER = der.oid("2.5.29.35")

_REASON_EXTENSIONS: dict[x509.ReasonFlags, bytes] = {
    reason: der.sequence(der.sequence(OID_REASON_CODE, der.octet_string(der.enumerated(code))))
    for reason, code in REASON_CODES.items()
}


@dataclass(frozen=True)
class RevokedEntry:
    """One CRL entry. ``reason`` None means "no reasonCode extension"."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None


def encode_entries(entries: Sequence[RevokedEntry]) -> bytes:
    """The encoded ``revokedCertificates`` SEQUENCE, or ``b""`` when there is no entry (field omitted)."""
    if not entries:
        return b""
    time_cache: dict[datetime, bytes] = {}
    tlv = der.tlv
    integer_content = der.integer_content
    x509_time = der.x509_time
    reason_ext = _REASON_EXTENSIONS
    parts: list[bytes] = []
    append = parts.append
    for entry in entries:
        when = time_cache.get(entry.revoked_at)
        if when is None:
            when = time_cache[entry.revoked_at] = x509_time(entry.revoked_at)
        body = tlv(0x02, integer_content(entry.serial)) + when
        if entry.reason is not None:
            body += reason_ext[entry.reason]
        append(tlv(0x30, body))
    return tlv(0x30, b"".join(parts))


def crl_extensions(*, authority_key_id: bytes, number: int) -> bytes:
    """``[0] EXPLICIT Extensions``: AKI (keyIdentifier only) and CRLNumber, both non-critical."""
    aki = der.sequence(
        OID_AUTHORITY_KEY_IDENTIFIER, der.octet_string(der.sequence(der.tlv(0x80, authority_key_id)))
    )
    crl_number = der.sequence(OID_CRL_NUMBER, der.octet_string(der.integer(number)))
    return der.explicit(0, der.sequence(aki, crl_number))


def build_tbs_crl(
    *,
    signature_algorithm: bytes,
    issuer_name: bytes,
    authority_key_id: bytes,
    number: int,
    this_update: datetime,
    next_update: datetime,
    entries: Sequence[RevokedEntry],
) -> bytes:
    """The DER ``TBSCertList``. ``issuer_name`` and ``signature_algorithm`` are already-encoded TLVs."""
    return der.sequence(
        der.integer(1),
        signature_algorithm,
        issuer_name,
        der.x509_time(this_update),
        der.x509_time(next_update),
        encode_entries(entries),
        crl_extensions(authority_key_id=authority_key_id, number=number),
    )


@dataclass(frozen=True)
class CrlHeader:
    """The top-level fields of a TBSCertList, as found in the bytes (used by the pre-sign gate)."""

    version: int | None
    issuer: bytes
    this_update: bytes
    next_update: bytes | None
    revoked_present: bool
    revoked_empty: bool
    extensions: dict[str, bytes]  # dotted OID -> extnValue contents


def _oid_text(content: bytes) -> str:
    first = content[0]
    arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(str(a) for a in arcs)


def read_tbs_header(tbs: bytes) -> CrlHeader:
    """Parse the header of a TBSCertList without walking its entries (O(1) in the number of entries)."""
    tag, start, end = der.read_tlv(tbs)
    if tag != der.TAG_SEQUENCE or end != len(tbs):
        raise ValueError("TBSCertList is not one SEQUENCE")
    fields = der.children(tbs, start, end)
    pos = 0
    version: int | None = None
    if fields[pos][0] == der.TAG_INTEGER:
        version = int.from_bytes(tbs[fields[pos][2] : fields[pos][3]], "big", signed=True)
        pos += 1
    pos += 1  # signature AlgorithmIdentifier
    issuer = tbs[fields[pos][1] : fields[pos][3]]
    pos += 1
    this_update = tbs[fields[pos][1] : fields[pos][3]]
    pos += 1
    next_update: bytes | None = None
    if pos < len(fields) and fields[pos][0] in (der.TAG_UTC_TIME, der.TAG_GENERALIZED_TIME):
        next_update = tbs[fields[pos][1] : fields[pos][3]]
        pos += 1
    revoked_present = revoked_empty = False
    if pos < len(fields) and fields[pos][0] == der.TAG_SEQUENCE:
        revoked_present = True
        revoked_empty = fields[pos][2] == fields[pos][3]
        pos += 1
    extensions: dict[str, bytes] = {}
    if pos < len(fields) and fields[pos][0] == 0xA0:
        _, _, c_start, c_end = fields[pos]
        _, s_start, s_end = der.read_tlv(tbs, c_start, c_end)
        for _, _, e_start, e_end in der.children(tbs, s_start, s_end):
            parts = der.children(tbs, e_start, e_end)
            oid_text = _oid_text(tbs[parts[0][2] : parts[0][3]])
            value = parts[-1]
            extensions[oid_text] = tbs[value[2] : value[3]]
    return CrlHeader(version, issuer, this_update, next_update, revoked_present, revoked_empty, extensions)
