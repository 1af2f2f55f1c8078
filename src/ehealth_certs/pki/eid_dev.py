"""Test Belgian eIDs for development: a stand-in "Citizen CA" and the two certificates of one card.

This plays the role of the Belgian state's card issuer, which the platform never is: the keys made
here belong to a pretend government and a pretend citizen, not to the platform, so this module signs
with its own keys instead of going through ``pki/issuer.py`` (house rule 1 is about the platform's CA
keys). Only ``ehcerts dev make-eid`` and tests use it; a production deployment trusts the real
Citizen CAs instead.

The shape follows a real card: subject ``C=BE, CN=<First> <Last> (Authentication|Signature),
SN=<surname>, GN=<given names>, serialNumber=<SSIN>``; the Authentication certificate has keyUsage
digitalSignature (+ EKU clientAuth), the Signature certificate keyUsage nonRepudiation; keys RSA-2048.
The qualified-certificate statements of a real Signature certificate are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ehealth_certs.errors import DomainError, ErrorKind

EID_KEY_BITS = 2048
CITIZEN_CA_KEY_BITS = 3072
CITIZEN_CA_VALID_DAYS = 20 * 365
_SSIN_FORM = re.compile(r"[0-9]{11}")


@dataclass(frozen=True)
class TestEid:
    """The content of one test card: two key pairs with their certificates and the issuing CA."""

    __test__ = False  # a domain name, not a pytest test class

    ssin: str
    first_name: str
    last_name: str
    authentication: tuple[x509.Certificate, rsa.RSAPrivateKey]
    signature: tuple[x509.Certificate, rsa.RSAPrivateKey]
    citizen_ca: x509.Certificate


def create_citizen_ca(
    *, now: datetime, name: str = "ehealth-certs Test Citizen CA", valid_days: int = CITIZEN_CA_VALID_DAYS
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A self-signed test CA standing in for a Belgian "Citizen CA" (and its root, for simplicity)."""
    now = _aware(now)
    if not name.strip():
        raise DomainError(ErrorKind.BAD_REQUEST, "the test Citizen CA needs a name")
    key = rsa.generate_private_key(public_exponent=65537, key_size=CITIZEN_CA_KEY_BITS)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=valid_days) - timedelta(seconds=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def create_test_eid(
    *,
    ssin: str,
    first_name: str,
    last_name: str,
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
    now: datetime,
    valid_days: int = 3650,
) -> TestEid:
    """Issue the Authentication and Signature certificates of one test card under ``ca``.

    Only the SSIN's form (11 digits) is checked, so that tests can build cards with bad check digits.
    """
    now = _aware(now)
    if not _SSIN_FORM.fullmatch(ssin):
        raise DomainError(ErrorKind.BAD_IDENTIFIER, f"SSIN must be 11 digits, got {ssin!r}")
    if not last_name.strip():
        raise DomainError(ErrorKind.BAD_REQUEST, "a test eID needs a last name")
    if valid_days <= 0:
        raise DomainError(ErrorKind.BAD_REQUEST, f"valid_days must be positive, got {valid_days}")
    ca_cert, ca_key = ca
    if _spki(ca_key.public_key()) != _spki(ca_cert.public_key()):
        raise DomainError(ErrorKind.BAD_REQUEST, "the test Citizen CA key does not match its certificate")
    not_after = now + timedelta(days=valid_days) - timedelta(seconds=1)
    if not_after > ca_cert.not_valid_after_utc:
        raise DomainError(
            ErrorKind.BAD_REQUEST,
            f"the test eID would outlive its Citizen CA (CA expires {ca_cert.not_valid_after_utc:%Y-%m-%d})",
        )
    if now < ca_cert.not_valid_before_utc:
        raise DomainError(ErrorKind.BAD_REQUEST, "the test Citizen CA is not yet valid")
    certificates = {
        role: _issue_card_certificate(
            role=role,
            ssin=ssin,
            first_name=first_name,
            last_name=last_name,
            ca_cert=ca_cert,
            ca_key=ca_key,
            now=now,
            not_after=not_after,
        )
        for role in ("Authentication", "Signature")
    }
    return TestEid(
        ssin=ssin,
        first_name=first_name,
        last_name=last_name,
        authentication=certificates["Authentication"],
        signature=certificates["Signature"],
        citizen_ca=ca_cert,
    )


def _issue_card_certificate(
    *,
    role: str,
    ssin: str,
    first_name: str,
    last_name: str,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    now: datetime,
    not_after: datetime,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=EID_KEY_BITS)
    display = f"{first_name} {last_name}".strip()
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{display} ({role})"),
        x509.NameAttribute(NameOID.SURNAME, last_name),
    ]
    # Some Belgians have no given name; a real card then has no GN attribute at all.
    if first_name:
        attributes.append(x509.NameAttribute(NameOID.GIVEN_NAME, first_name))
    attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, ssin))
    authentication = role == "Authentication"
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        # The issuer name is copied from the CA certificate so that its encoding matches byte for byte.
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=authentication,
                content_commitment=not authentication,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if authentication:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _spki(public_key: object) -> bytes:
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise DomainError(ErrorKind.BAD_REQUEST, "the test Citizen CA must have an RSA key")
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # Certificates hold whole seconds; truncating keeps notBefore equal to what was asked for.
    return now.astimezone(UTC).replace(microsecond=0)
