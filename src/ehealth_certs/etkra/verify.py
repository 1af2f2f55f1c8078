"""Requests signed with the holder's eHealth authentication key (EtkRA over REST).

The token is a compact JWS (``pki/jws.py``) whose ``x5c`` is ``[eHealth auth certificate, issuing CA]`` and
whose payload is ``{"id": "_<uuid>", "issueInstant": "...Z", "body": {...}}``, the same envelope as the
eID-signed CertRA requests. Trust comes only from OUR issuing CA of the environment and from our database:
the leaf must be directly issued by that CA, valid now, and recorded as ``issued`` (not revoked) with the
same DER. Whatever else ``x5c`` carries is ignored.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.jws import parse_signed_payload, sign_jws, signed_envelope, verify_jws
from ehealth_certs.ra.states import CertState
from ehealth_certs.storage.models import Certificate


@dataclass(frozen=True)
class AuthSignedRequest:
    """A verified request: the holder's certificate (and its row id), the request id and body."""

    certificate: x509.Certificate
    certificate_id: int
    request_id: str
    issue_instant: datetime
    body: dict[str, Any]


def _untrusted(detail: str) -> DomainError:
    return DomainError(ErrorKind.UNTRUSTED_SIGNER, detail)


def verify_auth_request(
    s: Session,
    token: str,
    *,
    issuing_ca: x509.Certificate,
    issuer_id: int,
    environment: str,
    now: datetime,
    max_age: timedelta,
) -> AuthSignedRequest:
    """Verify ``token``; ``s`` is only read (record the request id with ``record_request_id``).

    Errors: BAD_SIGNATURE (the JWS itself), UNTRUSTED_SIGNER (not our issuing CA, or unknown to our
    database), FORBIDDEN (the certificate is revoked), EXPIRED (outside its validity), BAD_REQUEST
    (payload shape, issueInstant too far from ``now``).
    """
    parts = verify_jws(token)
    leaf = parts.chain[0]
    if leaf.issuer != issuing_ca.subject:
        raise _untrusted(f"the signer's certificate is not issued by the {environment} issuing CA")
    try:
        leaf.verify_directly_issued_by(issuing_ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise _untrusted(f"the signer's certificate is not issued by the {environment} issuing CA") from exc
    if now < leaf.not_valid_before_utc or now > leaf.not_valid_after_utc:
        raise DomainError(ErrorKind.EXPIRED, "the eHealth authentication certificate is not valid now")
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise DomainError(ErrorKind.FORBIDDEN, "the signer's certificate has no key usage") from exc
    if not ku.digital_signature:
        raise DomainError(ErrorKind.FORBIDDEN, "the signer's certificate may not sign (no digitalSignature)")
    serial_hex = format(leaf.serial_number, "x")
    row = s.execute(
        select(Certificate).where(
            Certificate.issuer_id == issuer_id,
            Certificate.serial == serial_hex,
            Certificate.environment == environment,
        )
    ).scalar_one_or_none()
    if row is None or row.der != leaf.public_bytes(serialization.Encoding.DER):
        raise _untrusted("the signer's certificate is not a certificate this platform issued")
    if row.status == CertState.REVOKED:
        raise DomainError(ErrorKind.FORBIDDEN, "the eHealth authentication certificate is revoked")
    if row.status != CertState.ISSUED:
        raise _untrusted("the signer's certificate is not issued yet")
    request_id, issue_instant, body = parse_signed_payload(parts.payload)
    if abs(issue_instant - now) > max_age:
        raise DomainError(
            ErrorKind.BAD_REQUEST,
            f"issueInstant {issue_instant:%Y-%m-%dT%H:%M:%SZ} is more than {max_age} from server time",
        )
    return AuthSignedRequest(leaf, row.id, request_id, issue_instant, body)


def auth_signed_request(
    chain: list[x509.Certificate], sign: Callable[[bytes], bytes], body: Mapping[str, Any], *, now: datetime
) -> str:
    """Client side: the JWS for an EtkRA call, signed with the eHealth authentication key.

    ``sign`` receives the JWS signing input and returns an RS256 signature (PKCS#1 v1.5, SHA-256).
    """
    return sign_jws(signed_envelope(body, now=now), chain=chain, sign=sign)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(
    value: Any, field: str, *, kind: ErrorKind = ErrorKind.BAD_REQUEST, limit: int = 16 * 1024
) -> bytes:
    """Strict base64 of a body field (bounded, so a huge field is refused before decoding)."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise DomainError(kind, f"field {field!r} is missing, not a string or too long")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise DomainError(kind, f"field {field!r} is not valid base64") from exc
