"""PKCS#10 parsing and proof of possession (quality-bar §1.3).

The CSR proves possession of the key and carries the public key; it decides nothing else. Its subject
is returned so that the RA can compare it with the approved DN, and its requested extensions and other
attributes are ignored: they are never copied into a certificate, whose content comes from the profile
and RA-verified data. The key policy (``keys.check_public_key``) is not run here; the RA runs both.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from ehealth_certs.errors import DomainError, ErrorKind

DEFAULT_MAX_CSR_BYTES: Final = 16384

_RSA_PKCS1: Final = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
    }
)
_ECDSA: Final = frozenset(
    {
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)
_SHA2: Final = (hashes.SHA256, hashes.SHA384, hashes.SHA512)

_PEM: Final = re.compile(
    rb"\A\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n"
    rb"(?P<body>[A-Za-z0-9+/=\s]*?)"
    rb"-----END (NEW )?CERTIFICATE REQUEST-----\s*\Z"
)


@dataclass(frozen=True)
class ParsedCsr:
    """A CSR whose self-signature verified: the exact DER received, its subject and its public key."""

    der: bytes
    subject: x509.Name
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def _bad(detail: str) -> DomainError:
    return DomainError(ErrorKind.BAD_CSR, detail)


def _to_der(data: bytes) -> bytes:
    if data.lstrip()[:5] != b"-----":
        return data
    m = _PEM.match(data)
    if m is None:
        raise _bad("PEM input must hold exactly one CERTIFICATE REQUEST block")
    body = b"".join(m.group("body").split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("PEM body is not valid base64") from None


def _check_algorithm(csr: x509.CertificateSigningRequest, public_key: object) -> None:
    oid = csr.signature_algorithm_oid
    if oid in _RSA_PKCS1 or oid == SignatureAlgorithmOID.RSASSA_PSS:
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise _bad(
                f"signature algorithm {oid.dotted_string} does not match the {type(public_key).__name__}"
            )
    elif oid in _ECDSA:
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise _bad(
                f"signature algorithm {oid.dotted_string} does not match the {type(public_key).__name__}"
            )
    else:
        name = getattr(oid, "_name", None) or oid.dotted_string
        raise _bad(f"unsupported signature algorithm {name}: use SHA-256/384/512 with RSA, RSA-PSS or ECDSA")
    # For PSS the hash sits in the parameters; a SHA-1 PSS (the RFC 4055 default) is refused here too.
    hash_algorithm = csr.signature_hash_algorithm
    if not isinstance(hash_algorithm, _SHA2):
        raise _bad(f"unsupported signature hash {getattr(hash_algorithm, 'name', None)}: use SHA-2")


def parse_csr(data: bytes, *, max_bytes: int = DEFAULT_MAX_CSR_BYTES) -> ParsedCsr:
    """Parse a PKCS#10 request (DER or PEM) and verify its self-signature (proof of possession).

    Raises ``DomainError(BAD_CSR)`` for input over ``max_bytes``, undecodable input, an unsupported
    key type (only RSA and EC), an unsupported signature algorithm (SHA-1, MD5, ...) or a signature that
    does not verify. Requested extensions and attributes are ignored, never copied. The key policy is
    not checked here (see ``keys.check_public_key``).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _bad("CSR must be bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise _bad(f"CSR of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    if not data.strip():
        raise _bad("CSR is empty")
    der = _to_der(data)
    # The parser is the trust boundary: whatever the ASN.1 library objects to, the caller sees BAD_CSR.
    try:
        csr = x509.load_der_x509_csr(der)
        subject = csr.subject
        # Touch the lazily decoded fields now, so a malformed one fails here and not in the caller.
        subject.rfc4514_string()
        csr.signature_algorithm_oid  # noqa: B018
    except Exception:
        raise _bad("CSR is not a decodable PKCS#10 request") from None
    try:
        public_key = csr.public_key()
    except ValueError as exc:
        # e.g. an even RSA exponent or an EC point off the curve: say why, the message names no secret.
        raise _bad(f"CSR public key is invalid: {exc}") from None
    except Exception:
        raise _bad("CSR public key is of an unsupported type") from None
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise _bad(f"CSR key type {type(public_key).__name__}: only RSA and EC keys are accepted")
    try:
        _check_algorithm(csr, public_key)
        valid = csr.is_signature_valid
    except DomainError:
        raise
    except Exception:
        raise _bad("CSR signature cannot be checked") from None
    if not valid:
        raise _bad("CSR signature does not verify (proof of possession failed)")
    return ParsedCsr(der=der, subject=subject, public_key=public_key)
