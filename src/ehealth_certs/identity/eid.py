"""Server-side verification of requests signed with a Belgian eID (a JWS with ``x5c``).

Trust comes only from the configured Citizen CA certificates: whatever CA certificates a token
carries in ``x5c[1:]`` are ignored. The leaf must be directly issued by one configured Citizen CA
(same subject, signature verifies with that CA's key), both must be valid at ``now``, and the key
usage must fit the role the operation demands, so that an Authentication-key token cannot stand in
for a Signature-key one (the legal acceptance of GenerateCertificate and Revoke) or the reverse.

Not checked here, on purpose: replay (the RA stores used request ids), and whether the signer is the
person the request is for (the caller compares ``identity.ssin``). Revocation of eID certificates
(Citizen CA CRL/OCSP) is not checked yet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identifiers import validate_ssin
from ehealth_certs.pki.jws import parse_signed_payload, verify_jws

ROLE_AUTHENTICATION = "authentication"
ROLE_SIGNATURE = "signature"
ROLES = (ROLE_AUTHENTICATION, ROLE_SIGNATURE)
DEFAULT_MAX_AGE = timedelta(minutes=5)

_SSIN_FORM = re.compile(r"[0-9]{11}")
# SHA-1 and MD5 certificate signatures can be forged; real eID certificates use SHA-256.
_WEAK_HASHES = (hashes.SHA1, hashes.MD5)


@dataclass(frozen=True)
class EidIdentity:
    """The person behind a verified eID signature, as written in the certificate."""

    ssin: str
    first_name: str
    last_name: str
    role: str  # "authentication" | "signature": the eID key that signed
    certificate: x509.Certificate


@dataclass(frozen=True)
class SignedRequest:
    """A verified eID-signed request: who signed it, its id (for replay checks), when, and what."""

    identity: EidIdentity
    request_id: str
    issue_instant: datetime
    body: dict[str, Any]


class EidVerifier:
    """Verifies eID-signed requests against a fixed list of trusted Citizen CA certificates."""

    def __init__(self, trusted_citizen_cas: Sequence[x509.Certificate]) -> None:
        if not trusted_citizen_cas:
            raise DomainError(ErrorKind.CONFIGURATION, "no trusted Citizen CA is configured")
        for ca in trusted_citizen_cas:
            try:
                is_ca = _is_ca(ca)
            except ValueError as exc:
                raise DomainError(
                    ErrorKind.CONFIGURATION, "a trusted Citizen CA has malformed extensions"
                ) from exc
            if not is_ca:
                raise DomainError(
                    ErrorKind.CONFIGURATION,
                    f"trusted Citizen CA {ca.subject.rfc4514_string()} is not a CA certificate",
                )
        self._trusted = tuple(trusted_citizen_cas)

    @property
    def trusted_citizen_cas(self) -> tuple[x509.Certificate, ...]:
        return self._trusted

    def verify(
        self, token: str, *, now: datetime, role: str, max_age: timedelta = DEFAULT_MAX_AGE
    ) -> SignedRequest:
        """Verify ``token`` as signed at ``now`` by the eID key named by ``role``.

        Errors (``DomainError``): BAD_SIGNATURE (the JWS), UNTRUSTED_SIGNER (not issued by a trusted
        Citizen CA), EXPIRED (leaf or CA outside its validity), FORBIDDEN (key of the wrong role),
        BAD_IDENTIFIER (no valid SSIN in the certificate), BAD_REQUEST (payload shape or
        issueInstant outside ``now ± max_age``).
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        now = now.astimezone(UTC)
        parts = verify_jws(token)
        leaf = parts.chain[0]
        issuer = self._issuer_of(leaf)
        _check_validity(issuer, now, "the Citizen CA")
        _check_validity(leaf, now, "the eID certificate")
        _check_role(leaf, role)
        identity = _identity(leaf, role)
        request_id, issue_instant, body = parse_signed_payload(parts.payload)
        if abs(issue_instant - now) > max_age:
            raise DomainError(
                ErrorKind.BAD_REQUEST,
                f"issueInstant {issue_instant:%Y-%m-%dT%H:%M:%SZ} is more than {max_age} from server time",
            )
        return SignedRequest(identity=identity, request_id=request_id, issue_instant=issue_instant, body=body)

    def _issuer_of(self, leaf: x509.Certificate) -> x509.Certificate:
        if _is_ca(leaf):
            raise DomainError(ErrorKind.UNTRUSTED_SIGNER, "the signer's certificate is a CA, not an eID")
        if isinstance(leaf.signature_hash_algorithm, _WEAK_HASHES):
            raise DomainError(ErrorKind.UNTRUSTED_SIGNER, "the eID certificate is signed with a weak hash")
        for ca in self._trusted:
            if ca.subject != leaf.issuer:
                continue
            try:
                leaf.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue  # a CA with the same name but another key (renewed, or an impostor)
            return ca
        raise DomainError(
            ErrorKind.UNTRUSTED_SIGNER,
            f"the eID certificate's issuer {leaf.issuer.rfc4514_string()} is not a trusted Citizen CA",
        )


def load_citizen_ca(data: bytes) -> x509.Certificate:
    """Load a Citizen CA certificate from PEM or DER (configuration input)."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise DomainError(ErrorKind.CONFIGURATION, "not a PEM or DER certificate") from exc


# -- helpers --------------------------------------------------------------------------------------
def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_validity(cert: x509.Certificate, now: datetime, what: str) -> None:
    # RFC 5280 §4.1.2.5: both bounds are inclusive.
    if now < cert.not_valid_before_utc:
        raise DomainError(
            ErrorKind.EXPIRED, f"{what} is not valid before {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
        )
    if now > cert.not_valid_after_utc:
        raise DomainError(
            ErrorKind.EXPIRED, f"{what} expired at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        )


def _check_role(leaf: x509.Certificate, role: str) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise DomainError(ErrorKind.FORBIDDEN, "the eID certificate has no key usage") from exc
    if role == ROLE_AUTHENTICATION:
        # A certificate carrying nonRepudiation is the Signature certificate: its key is for legal
        # acceptance, never for logging in.
        if not usage.digital_signature or usage.content_commitment:
            raise DomainError(
                ErrorKind.FORBIDDEN, "this operation must be signed with the eID Authentication key"
            )
    elif not usage.content_commitment:
        raise DomainError(ErrorKind.FORBIDDEN, "this operation must be signed with the eID Signature key")


def _text(cert: x509.Certificate, oid: x509.ObjectIdentifier, label: str) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    if len(values) > 1:
        raise DomainError(ErrorKind.BAD_IDENTIFIER, f"the eID certificate has several {label} attributes")
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _identity(leaf: x509.Certificate, role: str) -> EidIdentity:
    ssin = _text(leaf, NameOID.SERIAL_NUMBER, "SERIALNUMBER")
    if ssin is None or not _SSIN_FORM.fullmatch(ssin):
        raise DomainError(
            ErrorKind.BAD_IDENTIFIER, "the eID certificate has no 11-digit SSIN in SERIALNUMBER"
        )
    validate_ssin(ssin)
    last_name = _text(leaf, NameOID.SURNAME, "SN")
    if not last_name:
        raise DomainError(ErrorKind.BAD_IDENTIFIER, "the eID certificate has no surname")
    # Persons without a given name exist; their card has no GN attribute.
    first_name = _text(leaf, NameOID.GIVEN_NAME, "GN") or ""
    return EidIdentity(ssin=ssin, first_name=first_name, last_name=last_name, role=role, certificate=leaf)
