"""OCSP (RFC 6960): request parser, response builder (no signing), unsigned error responses.

Requests: DER only (the web layer decodes the base64 GET form). Exactly one ``Request`` per ``OCSPRequest``
is supported; anything else is ``malformedRequest``. CertID hashes: SHA-1 (what clients send by default)
and SHA-256. Signed requests are accepted but the signature is not checked (RFC 6960 leaves it optional and
the service does not require it).

Responses: ``BasicOCSPResponse`` with responderID byKey, one SingleResponse, the responder certificate in
``certs``, an optional nonce echo. ``producedAt`` is given by the caller (pure code: no clock).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import der
from ehealth_certs.pki.crl import REASON_CODES

MAX_REQUEST_BYTES = 16 * 1024
MAX_NONCE_BYTES = 32  # RFC 8954 §2.1

HASH_ALGORITHMS = {"sha1": "1.3.14.3.2.26", "sha256": "2.16.840.1.101.3.4.2.1"}
_HASH_ALGORITHM_DER = {
    name: der.sequence(der.oid(dotted), der.null()) for name, dotted in HASH_ALGORITHMS.items()
}

ERROR_STATUSES = {
    "malformedRequest": 1,
    "internalError": 2,
    "tryLater": 3,
    "sigRequired": 5,
    "unauthorized": 6,
}
CERT_STATUSES = ("good", "revoked", "unknown")

OID_PKIX_OCSP_BASIC = der.oid("1.3.6.1.5.5.7.48.1.1")
OID_PKIX_OCSP_NONCE = der.oid("1.3.6.1.5.5.7.48.1.2")


@dataclass(frozen=True)
class OcspQuery:
    """The one CertID asked about, plus the request nonce (inner OCTET STRING value) if any."""

    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    nonce: bytes | None


def _malformed(detail: str) -> DomainError:
    return DomainError(ErrorKind.MALFORMED_MESSAGE, f"OCSP request: {detail}")


def parse_ocsp_request(data: bytes) -> OcspQuery:
    """Parse a DER ``OCSPRequest`` with exactly one request; else ``DomainError(MALFORMED_MESSAGE)``."""
    if not isinstance(data, bytes) or not data:
        raise _malformed("empty body")
    if len(data) > MAX_REQUEST_BYTES:
        raise _malformed(f"larger than {MAX_REQUEST_BYTES} bytes")
    try:
        # cryptography refuses trailing data, BER, and more than one Request (the limitation we document).
        request = x509_ocsp.load_der_ocsp_request(data)
        algorithm = request.hash_algorithm
        name_hash = request.issuer_name_hash
        key_hash = request.issuer_key_hash
        serial = request.serial_number
        extensions = request.extensions
    except (ValueError, TypeError, NotImplementedError) as exc:
        # NotImplementedError: cryptography's answer to a request list longer than one.
        raise _malformed("not a DER OCSPRequest with exactly one request") from exc
    except x509.UnsupportedGeneralNameType as exc:
        raise _malformed("unsupported requestor name") from exc
    except UnsupportedAlgorithm as exc:
        raise _malformed("unsupported CertID hash algorithm") from exc
    if isinstance(algorithm, hashes.SHA1):
        name = "sha1"
    elif isinstance(algorithm, hashes.SHA256):
        name = "sha256"
    else:
        raise _malformed(f"unsupported CertID hash {algorithm.name}")
    digest_size = hashlib.new(name).digest_size
    if len(name_hash) != digest_size or len(key_hash) != digest_size:
        raise _malformed("CertID hash lengths do not match the hash algorithm")
    nonce: bytes | None = None
    for extension in extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            nonce = extension.value.nonce
            if not 1 <= len(nonce) <= MAX_NONCE_BYTES:
                raise _malformed(f"nonce of {len(nonce)} bytes (1..{MAX_NONCE_BYTES} allowed)")
        elif extension.critical:
            raise _malformed(f"unsupported critical extension {extension.oid.dotted_string}")
    return OcspQuery(name, name_hash, key_hash, serial, nonce)


def error_response(status: str) -> bytes:
    """An unsigned ``OCSPResponse`` carrying only an error status (RFC 6960 §2.3)."""
    if status not in ERROR_STATUSES or status == "sigRequired":
        allowed = ", ".join(s for s in ERROR_STATUSES if s != "sigRequired")
        raise DomainError(ErrorKind.BAD_REQUEST, f"unknown OCSP error status {status!r} (allowed: {allowed})")
    return der.sequence(der.enumerated(ERROR_STATUSES[status]))


def _hash(hash_algorithm: str, data: bytes) -> bytes:
    if hash_algorithm not in HASH_ALGORITHMS:
        raise DomainError(ErrorKind.BAD_REQUEST, f"unsupported OCSP hash algorithm {hash_algorithm!r}")
    return hashlib.new(hash_algorithm, data).digest()


def issuer_hashes(issuer_certificate: x509.Certificate, hash_algorithm: str) -> tuple[bytes, bytes]:
    """``(issuerNameHash, issuerKeyHash)`` over the issuer's subject bytes as issued and its key bits."""
    fields = der.tbs_certificate_fields(issuer_certificate.public_bytes(serialization.Encoding.DER))
    return _hash(hash_algorithm, fields["subject"]), _hash(hash_algorithm, fields["subject_public_key"])


def responder_key_hash(responder_certificate: x509.Certificate) -> bytes:
    """SHA-1 of the responder's subjectPublicKey bits: ``ResponderID.byKey`` (RFC 6960 §4.2.1)."""
    fields = der.tbs_certificate_fields(responder_certificate.public_bytes(serialization.Encoding.DER))
    return hashlib.sha1(fields["subject_public_key"]).digest()  # noqa: S324 - mandated by RFC 6960


def _cert_status(status: str, revoked_at: datetime | None, reason: x509.ReasonFlags | None) -> bytes:
    if status == "good":
        return b"\x80\x00"
    if status == "unknown":
        return b"\x82\x00"
    if status == "revoked" and revoked_at is not None:
        body = der.generalized_time(revoked_at)
        if reason is not None:
            body += der.explicit(0, der.enumerated(REASON_CODES[reason]))
        return der.tlv(0xA1, body)
    raise DomainError(
        ErrorKind.BAD_REQUEST, f"OCSP status {status!r} needs one of {CERT_STATUSES} (revoked: a time)"
    )


def build_response_data(
    *,
    responder_key_id: bytes,
    produced_at: datetime,
    hash_algorithm: str,
    issuer_name_hash: bytes,
    issuer_key_hash: bytes,
    serial: int,
    status: str,
    revoked_at: datetime | None,
    reason: x509.ReasonFlags | None,
    this_update: datetime,
    next_update: datetime,
    nonce: bytes | None,
) -> bytes:
    """The DER ``ResponseData`` (the to-be-signed part of a BasicOCSPResponse)."""
    if hash_algorithm not in _HASH_ALGORITHM_DER:
        raise DomainError(ErrorKind.BAD_REQUEST, f"unsupported OCSP hash algorithm {hash_algorithm!r}")
    cert_id = der.sequence(
        _HASH_ALGORITHM_DER[hash_algorithm],
        der.octet_string(issuer_name_hash),
        der.octet_string(issuer_key_hash),
        der.integer(serial),
    )
    single = der.sequence(
        cert_id,
        _cert_status(status, revoked_at, reason),
        der.generalized_time(this_update),
        der.explicit(0, der.generalized_time(next_update)),
    )
    parts = [
        der.explicit(2, der.octet_string(responder_key_id)),
        der.generalized_time(produced_at),
        der.sequence(single),
    ]
    if nonce is not None:
        nonce_ext = der.sequence(OID_PKIX_OCSP_NONCE, der.octet_string(der.octet_string(nonce)))
        parts.append(der.explicit(1, der.sequence(nonce_ext)))
    return der.sequence(*parts)


def assemble_response(
    response_data: bytes, signature_algorithm: bytes, signature: bytes, responder_certificate_der: bytes
) -> bytes:
    """A successful ``OCSPResponse`` around a signed BasicOCSPResponse that includes the responder cert."""
    basic = der.assemble_signed(
        response_data,
        signature_algorithm,
        signature,
        der.explicit(0, der.sequence(responder_certificate_der)),
    )
    response_bytes = der.sequence(OID_PKIX_OCSP_BASIC, der.octet_string(basic))
    return der.sequence(der.enumerated(0), der.explicit(0, response_bytes))
