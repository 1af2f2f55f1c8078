"""Small, strict DER helpers: enough to build CRLs and OCSP responses directly and to splice signatures.

Building the bytes ourselves (instead of going through an object model) keeps a 1,000,000-entry CRL to a
few seconds and lets the issuer attach a signature computed by a ``Signer`` that never reveals its key.
Only definite lengths and single-byte tags are produced or accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ehealth_certs.errors import DomainError, ErrorKind

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30
TAG_SET = 0x31

_SHORT_LENGTHS = [bytes([n]) for n in range(0x80)]


def length(n: int) -> bytes:
    if n < 0x80:
        return _SHORT_LENGTHS[n]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    return tlv(TAG_SEQUENCE, b"".join(parts))


def integer_content(n: int) -> bytes:
    """Minimal two's-complement content octets of an INTEGER."""
    if n >= 0:
        return n.to_bytes(n.bit_length() // 8 + 1, "big")
    return n.to_bytes(((~n).bit_length()) // 8 + 1, "big", signed=True)


def integer(n: int) -> bytes:
    return tlv(TAG_INTEGER, integer_content(n))


def enumerated(n: int) -> bytes:
    return tlv(TAG_ENUMERATED, integer_content(n))


def octet_string(data: bytes) -> bytes:
    return tlv(TAG_OCTET_STRING, data)


def bit_string(data: bytes) -> bytes:
    """A BIT STRING with no unused bits (signatures, key hashes)."""
    return tlv(TAG_BIT_STRING, b"\x00" + data)


def null() -> bytes:
    return b"\x05\x00"


def explicit(number: int, content: bytes) -> bytes:
    """A constructed context-specific tag ``[number] EXPLICIT`` around ``content`` (one TLV or several)."""
    return tlv(0xA0 | number, content)


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"invalid OID {dotted!r}")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(TAG_OID, bytes(body))


def _utc_seconds(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise DomainError(
            ErrorKind.BAD_REQUEST, "a naive datetime reached the DER encoder; times must be UTC"
        )
    return at.astimezone(UTC).replace(microsecond=0)


def generalized_time(at: datetime) -> bytes:
    return tlv(TAG_GENERALIZED_TIME, _utc_seconds(at).strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def x509_time(at: datetime) -> bytes:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""
    at = _utc_seconds(at)
    if 1950 <= at.year <= 2049:
        return tlv(TAG_UTC_TIME, at.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(TAG_GENERALIZED_TIME, at.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


# -- reading ---------------------------------------------------------------------------------------


def read_tlv(data: bytes, pos: int = 0, end: int | None = None) -> tuple[int, int, int]:
    """Return ``(tag, content_start, content_end)`` of the TLV at ``pos``; strict DER lengths."""
    limit = len(data) if end is None else end
    if pos + 2 > limit:
        raise ValueError("truncated DER header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte tags are not supported")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > limit:
            raise ValueError("unsupported or truncated DER length")
        size = int.from_bytes(data[pos : pos + count], "big")
        if size < 0x80 or data[pos] == 0:
            raise ValueError("non-minimal DER length")
        pos += count
    if pos + size > limit:
        raise ValueError("DER value runs past its container")
    return tag, pos, pos + size


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The TLVs inside ``data[start:end]`` as ``(tag, tlv_start, content_start, content_end)``."""
    out: list[tuple[int, int, int, int]] = []
    pos = start
    while pos < end:
        tag, c_start, c_end = read_tlv(data, pos, end)
        out.append((tag, pos, c_start, c_end))
        pos = c_end
    return out


def split_signed(der: bytes) -> tuple[bytes, bytes, bytes]:
    """Split ``SEQUENCE { tbs, signatureAlgorithm, BIT STRING }`` into its three encoded parts.

    Returns ``(tbs_der, algorithm_der, signature_value)`` where the last drops the unused-bits octet.
    """
    tag, start, end = read_tlv(der)
    if tag != TAG_SEQUENCE or end != len(der):
        raise ValueError("not a single DER SEQUENCE")
    parts = children(der, start, end)
    if len(parts) < 3 or parts[2][0] != TAG_BIT_STRING:
        raise ValueError("not a signed structure")
    (_, t0, _, e0), (_, t1, _, e1), (_, _, c2, e2) = parts[:3]
    return der[t0:e0], der[t1:e1], der[c2 + 1 : e2]


def assemble_signed(tbs_der: bytes, algorithm_der: bytes, signature: bytes, *trailer: bytes) -> bytes:
    """``SEQUENCE { tbs, algorithm, BIT STRING signature, trailer... }`` (trailer: OCSP ``certs``)."""
    return sequence(tbs_der, algorithm_der, bit_string(signature), *trailer)


def tbs_certificate_fields(cert_der: bytes) -> dict[str, bytes]:
    """The raw encodings of a certificate's TBS fields, byte for byte as issued.

    Keys: ``serial``, ``signature``, ``issuer``, ``validity``, ``subject``, ``spki``; plus
    ``subject_public_key`` (the BIT STRING contents without the unused-bits octet).
    """
    _, start, end = read_tlv(cert_der)
    _, tbs_start, tbs_end = read_tlv(cert_der, start, end)
    fields = children(cert_der, tbs_start, tbs_end)
    if fields and fields[0][0] == 0xA0:
        fields = fields[1:]
    names = ["serial", "signature", "issuer", "validity", "subject", "spki"]
    out = {name: cert_der[f[1] : f[3]] for name, f in zip(names, fields, strict=False)}
    spki = out["spki"]
    _, s_start, s_end = read_tlv(spki)
    spki_parts = children(spki, s_start, s_end)
    _, _, key_start, key_end = spki_parts[1]
    out["subject_public_key"] = spki[key_start + 1 : key_end]
    return out
