"""Helpers for the trusted-list tests: keys, certificates, a signed list, and the external judges."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

from ehealth_certs.pki import tsl
from ehealth_certs.pki.issuer import sign_trusted_list
from ehealth_certs.pki.signing import SoftwareSigner
from ehealth_certs.trustlist.publish import (
    STATUS_GRANTED,
    STATUS_WITHDRAWN,
    SchemeInfo,
    ServiceHistoryEntry,
    TrustService,
    build_trusted_list,
)

# Injected time: every certificate below is valid 2026-01-01 .. 2029-01-01, whatever the wall clock says.
VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)
VALID_TO = datetime(2029, 1, 1, tzinfo=UTC)
ISSUE = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
NEXT = ISSUE + timedelta(days=30)
NOW = ISSUE + timedelta(hours=2)

CA_PKC = tsl.SERVICE_CA_PKC
OCSP = tsl.SERVICE_OCSP
TSA = tsl.SERVICE_TSA
ETKRA_TYPE = tsl.SERVICE_UNSPECIFIED
TLS_TYPE = tsl.SERVICE_UNSPECIFIED

SAFE_XMLSEC1 = [
    "xmlsec1",
    "--verify",
    "--enabled-key-data",
    "x509",
    "--id-attr:Id",
    "http://uri.etsi.org/02231/v2#:TrustServiceStatusList",
    "--id-attr:Id",
    "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
]


def name(cn: str, org: str = "eHealth-platform Belgium") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_cert(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    cn: str,
    *,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    tl_signer: bool = False,
    eku: list[x509.ObjectIdentifier] | None = None,
    not_before: datetime = VALID_FROM,
    not_after: datetime = VALID_TO,
) -> x509.Certificate:
    subject = name(cn)
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    elif tl_signer:
        builder = builder.add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        ).add_extension(x509.ExtendedKeyUsage(eku or [tsl.OID_TSL_SIGNING]), critical=False)
    elif eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


@dataclass(frozen=True)
class SignerPair:
    signer: SoftwareSigner
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def pem(self, directory: Path, filename: str = "signer.pem") -> Path:
        path = directory / filename
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path


def _pair(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cn: str) -> SignerPair:
    return SignerPair(SoftwareSigner(key), make_cert(key, cn, tl_signer=True), key)


@pytest.fixture(scope="session")
def rsa_signer() -> SignerPair:
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=3072), "eHealth TL Signer RSA")


@pytest.fixture(scope="session")
def ec_signer() -> SignerPair:
    return _pair(ec.generate_private_key(ec.SECP256R1()), "eHealth TL Signer P-256")


@pytest.fixture(scope="session")
def other_signer() -> SignerPair:
    return _pair(ec.generate_private_key(ec.SECP256R1()), "Somebody Else TL Signer")


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    issuing: x509.Certificate
    old_issuing: x509.Certificate
    ocsp: x509.Certificate
    etkra: x509.Certificate
    tls: x509.Certificate
    tsa: x509.Certificate
    spare_ca: x509.Certificate


@pytest.fixture(scope="session")
def pki() -> Pki:
    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    root_key = key()
    root = make_cert(root_key, "eHealth Root CA", ca=True)
    issuing_key = key()
    issuing = make_cert(issuing_key, "eHealth Issuing CA 2026", issuer=(root, root_key), ca=True)
    up = (issuing, issuing_key)
    return Pki(
        root=root,
        issuing=issuing,
        old_issuing=make_cert(key(), "eHealth Issuing CA 2020", issuer=(root, root_key), ca=True),
        ocsp=make_cert(key(), "eHealth OCSP Responder", issuer=up, eku=[ExtendedKeyUsageOID.OCSP_SIGNING]),
        etkra=make_cert(key(), "eHealth EtkRA Signer", issuer=up),
        tls=make_cert(key(), "tsl.ehealth.example", issuer=up, eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
        tsa=make_cert(key(), "eHealth TSA", issuer=up, eku=[ExtendedKeyUsageOID.TIME_STAMPING]),
        spare_ca=make_cert(key(), "eHealth Issuing CA 2027", issuer=(root, root_key), ca=True),
    )


SCHEME = SchemeInfo(
    operator_name="eHealth-platform Belgium",
    scheme_name="eHealth-platform trusted list (acceptance)",
    distribution_uri="https://tsl-acpt.ehealth.example/tsl-ehealth.xml",
    information_uri="https://tsl-acpt.ehealth.example/",
    environment="acceptance",
)


def services_for(pki: Pki, *, extra: tuple[TrustService, ...] = ()) -> list[TrustService]:
    since = datetime(2026, 1, 2, tzinfo=UTC)
    return [
        TrustService(pki.root, CA_PKC, "eHealth Root CA", STATUS_GRANTED, since),
        TrustService(pki.issuing, CA_PKC, "eHealth Issuing CA 2026", STATUS_GRANTED, since),
        TrustService(
            pki.old_issuing,
            CA_PKC,
            "eHealth Issuing CA 2020",
            STATUS_WITHDRAWN,
            datetime(2026, 3, 1, tzinfo=UTC),
            (ServiceHistoryEntry(STATUS_GRANTED, datetime(2026, 1, 2, tzinfo=UTC)),),
        ),
        TrustService(pki.ocsp, OCSP, "eHealth OCSP Responder", STATUS_GRANTED, since),
        TrustService(pki.etkra, ETKRA_TYPE, "eHealth EtkRA signing certificate", STATUS_GRANTED, since),
        TrustService(pki.tls, TLS_TYPE, "TLS server tsl.ehealth.example", STATUS_GRANTED, since),
        TrustService(pki.tsa, TSA, "eHealth TSA", STATUS_GRANTED, since),
        *extra,
    ]


def publish(
    pki: Pki,
    signer: SignerPair,
    *,
    sequence: int = 7,
    issue: datetime = ISSUE,
    next_update: datetime = NEXT,
    extra: tuple[TrustService, ...] = (),
    services: list[TrustService] | None = None,
) -> bytes:
    root = build_trusted_list(
        scheme=SCHEME,
        services=services if services is not None else services_for(pki, extra=extra),
        sequence_number=sequence,
        issue_time=issue,
        next_update=next_update,
    )
    return sign_trusted_list(
        root, signer=signer.signer, signer_certificate=signer.certificate, signing_time=issue
    )


@pytest.fixture(scope="session")
def signed_list(pki: Pki, rsa_signer: SignerPair) -> bytes:
    return publish(pki, rsa_signer)


def xmlsec1_verify(
    xml: bytes, pem: Path, workdir: Path, at: datetime | None = NOW
) -> subprocess.CompletedProcess[str]:
    """The guide's safe command line (§7.2); ``at`` pins the verification time to the injected clock."""
    path = workdir / "tl-under-test.xml"
    path.write_bytes(xml)
    cmd = [*SAFE_XMLSEC1, "--trusted-pem", str(pem)]
    if at is not None:
        cmd += ["--verification-time", at.strftime("%Y-%m-%d %H:%M:%S")]
    return subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=60, check=False)


def pyxmlsec_verify(xml: bytes, certificate: x509.Certificate) -> None:
    """python-xmlsec as a second judge; the pinned certificate's key is used directly (no wall clock)."""
    import xmlsec

    root = etree.fromstring(xml)
    xmlsec.tree.add_ids(root, ["Id"])
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(
        certificate.public_bytes(serialization.Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem
    )
    ctx.verify(xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature))


Mutator = Callable[[bytes], bytes]


def replace_once(xml: bytes, old: bytes, new: bytes) -> bytes:
    assert xml.count(old) >= 1, old
    return xml.replace(old, new, 1)
