"""Shared material for the keystore / ETK / sealed-message tests: the real ETEE fixtures and a small
generated SHA-256 PKI (root CA, EtkRA, authentication certificates) valid around ``NOW``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ehealth_certs.pki.keystore import Keystore, load_keystore
from tests.paths import DATA

FIXTURES = DATA / "etee-fixtures"
PASSWORD = "test"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET_TEXT = b"This is a secret message from Alice for Bob"
OPENSSL = shutil.which("openssl") or "openssl"
KEYTOOL = shutil.which("keytool") or "keytool"


def fixture_bytes(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


@cache
def fixture_keystore(rel: str) -> Keystore:
    return load_keystore(fixture_bytes(rel), PASSWORD)


def ca2() -> x509.Certificate:
    return x509.load_der_x509_certificate(fixture_bytes("ca/CA2.cer"))


def ca_old() -> x509.Certificate:
    return x509.load_pem_x509_certificate(fixture_bytes("ca/CA.cer"))


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Federal Government"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "eHealth-platform Belgium"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _ku(**on: bool) -> x509.KeyUsage:
    fields = dict.fromkeys(
        [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    fields.update(on)
    return x509.KeyUsage(**fields)


def issue(
    subject: x509.Name,
    key: rsa.RSAPublicKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    ku: x509.KeyUsage,
    serial: int,
    start: datetime = NOW - timedelta(days=30),
    end: datetime = NOW + timedelta(days=365),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .public_key(key)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(ku, critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Person:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class MiniPki:
    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    ra: Person
    people: dict[str, Person]


@cache
def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    del label  # one cached key per label
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def mini_pki() -> MiniPki:
    root_key = rsa_key("root")
    root = issue(
        _name("Test Root CA"),
        root_key.public_key(),
        None,
        root_key,
        ca=True,
        ku=_ku(key_cert_sign=True, crl_sign=True),
        serial=1,
    )
    ra_key = rsa_key("ra")
    ra = issue(
        _name("ETK-RA"),
        ra_key.public_key(),
        root,
        root_key,
        ca=False,
        ku=_ku(digital_signature=True),
        serial=2,
    )
    people = {}
    for serial, who in enumerate(("Carol", "Dave"), start=10):
        key = rsa_key(who)
        cert = issue(
            _name(who),
            key.public_key(),
            root,
            root_key,
            ca=False,
            ku=_ku(digital_signature=True, content_commitment=True),
            serial=serial,
        )
        people[who] = Person(key, cert)
    return MiniPki(root_key, root, Person(ra_key, ra), people)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


encryption_ku = _ku(key_encipherment=True, data_encipherment=True)
