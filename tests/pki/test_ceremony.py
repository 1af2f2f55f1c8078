"""The ceremony: two environments with their own root, issuing CA and services; no shared trust."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ehealth_certs.environment import Environment
from ehealth_certs.pki import ceremony, der, lint, profiles
from ehealth_certs.pki.ceremony import EnvironmentPki

NOW = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
BASE = "https://certs.ehealth-certs.be/"
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
SERVICES = ("ocsp", "etkra")  # issued by the issuing CA; the trusted-list signer is self-signed


@pytest.fixture(scope="module")
def both() -> dict[Environment, EnvironmentPki]:
    return {env: ceremony.create_environment_pki(env, now=NOW, base_url=BASE) for env in Environment}


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_names_are_distinct_per_environment(both: dict[Environment, EnvironmentPki]) -> None:
    prod, acc = both[Environment.PRODUCTION], both[Environment.ACCEPTANCE]
    assert prod.issuing.certificate.subject.rfc4514_string() == (
        "CN=ehealth-certs Production Issuing CA 001,O=ehealth-certs,C=BE"
    )
    assert _cn(acc.root.certificate) == "ehealth-certs Acceptance Root CA 001"
    names = {
        _cn(getattr(pki, role).certificate)
        for pki in both.values()
        for role in ("root", "issuing", *SERVICES, "tsl")
    }
    assert len(names) == 10
    country = prod.root.certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0]
    assert country._type is x509.name._ASN1Type.PrintableString


def test_keys_and_lifetimes(both: dict[Environment, EnvironmentPki]) -> None:
    for pki in both.values():
        for role in ("root", "issuing"):
            key = getattr(pki, role).certificate.public_key()
            assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096
        assert isinstance(pki.ocsp.certificate.public_key(), ec.EllipticCurvePublicKey)
        for role in ("etkra", "tsl"):
            key = getattr(pki, role).certificate.public_key()
            assert isinstance(key, rsa.RSAPublicKey) and key.key_size >= 3072
        assert pki.root.certificate.not_valid_before_utc == NOW
        assert pki.root.certificate.not_valid_after_utc == datetime(2051, 2, 1, 9, 29, 59, tzinfo=UTC)
        assert pki.issuing.certificate.not_valid_after_utc == datetime(2036, 2, 1, 9, 29, 59, tzinfo=UTC)
        for role in SERVICES:
            cert = getattr(pki, role).certificate
            assert cert.not_valid_after_utc <= pki.issuing.certificate.not_valid_after_utc
            assert 2 * 365 - 1 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 3 * 366
            assert (
                cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
            )
        # The signers hold the keys of the certificates.
        for role in ("root", "issuing", *SERVICES):
            ca_key = getattr(pki, role)
            assert ca_key.signer.public_key.public_bytes(
                DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ) == (
                ca_key.certificate.public_key().public_bytes(
                    DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )


def test_service_certificate_profiles(both: dict[Environment, EnvironmentPki]) -> None:
    pki = both[Environment.PRODUCTION]
    ocsp = pki.ocsp.certificate.extensions
    assert list(ocsp.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.OCSP_SIGNING
    ]
    assert ocsp.get_extension_for_class(x509.OCSPNoCheck)
    etkra = pki.etkra.certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert etkra.critical and etkra.value.digital_signature and not etkra.value.content_commitment
    tsl = pki.tsl.certificate.extensions
    assert [o.dotted_string for o in tsl.get_extension_for_class(x509.ExtendedKeyUsage).value] == [
        "0.4.0.2231.3.0"
    ]
    ku = tsl.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment and not ku.key_cert_sign
    assert tsl.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert tsl.get_extension_for_class(x509.SubjectKeyIdentifier)
    issuing = pki.issuing.certificate.extensions
    assert issuing.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    root_ku = pki.root.certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert root_ku.critical and root_ku.value.key_cert_sign and root_ku.value.crl_sign


def test_urls(both: dict[Environment, EnvironmentPki]) -> None:
    base = "https://certs.ehealth-certs.be/pki/production"
    assert ceremony.leaf_urls(Environment.PRODUCTION, BASE) == (
        f"{base}/crl",
        f"{base}/ocsp",
        f"{base}/issuing.crt",
    )
    issuing = both[Environment.PRODUCTION].issuing.certificate.extensions
    cdp = issuing.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(f"{base}/root.crl")]
    aia = issuing.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [f"{base}/root.crt"]
    etkra_aia = (
        both[Environment.PRODUCTION]
        .etkra.certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        .value
    )
    assert {d.access_location.value for d in etkra_aia} == {f"{base}/ocsp", f"{base}/issuing.crt"}


def test_pkilint_is_clean_on_every_ceremony_certificate(both: dict[Environment, EnvironmentPki]) -> None:
    for pki in both.values():
        root = pki.root.certificate.public_bytes(DER)
        issuing = pki.issuing.certificate.public_bytes(DER)
        assert lint.blocking(lint.lint_certificate(root, root)) == []
        assert lint.blocking(lint.lint_certificate(issuing, root)) == []
        for role in SERVICES:
            assert (
                lint.blocking(
                    lint.lint_certificate(getattr(pki, role).certificate.public_bytes(DER), issuing)
                )
                == []
            )


def _verify(tmp: Path, root: x509.Certificate, issuing: x509.Certificate, leaf: x509.Certificate) -> int:
    (tmp / "root.pem").write_bytes(root.public_bytes(PEM))
    (tmp / "issuing.pem").write_bytes(issuing.public_bytes(PEM))
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(PEM))
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            str(int(NOW.timestamp()) + 60),
            "-x509_strict",
            "-CAfile",
            str(tmp / "root.pem"),
            "-untrusted",
            str(tmp / "issuing.pem"),
            str(tmp / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    ).returncode


def test_each_environment_verifies_alone_and_never_across(
    both: dict[Environment, EnvironmentPki], tmp_path: Path
) -> None:
    prod, acc = both[Environment.PRODUCTION], both[Environment.ACCEPTANCE]
    for own, other in ((prod, acc), (acc, prod)):
        for role in SERVICES:
            leaf = getattr(own, role).certificate
            assert _verify(tmp_path, own.root.certificate, own.issuing.certificate, leaf) == 0
            assert _verify(tmp_path, other.root.certificate, other.issuing.certificate, leaf) != 0
            assert _verify(tmp_path, other.root.certificate, own.issuing.certificate, leaf) != 0
        assert _verify(tmp_path, own.root.certificate, own.issuing.certificate, own.issuing.certificate) == 0
        assert (
            _verify(tmp_path, other.root.certificate, other.issuing.certificate, own.issuing.certificate) != 0
        )
    assert prod.root.certificate.public_key() != acc.root.certificate.public_key()


def test_issuer_name_bytes_are_copied(both: dict[Environment, EnvironmentPki]) -> None:
    for pki in both.values():
        issuing_subject = der.tbs_certificate_fields(pki.issuing.certificate.public_bytes(DER))["subject"]
        for role in SERVICES:
            assert der.tbs_certificate_fields(getattr(pki, role).certificate.public_bytes(DER))["issuer"] == (
                issuing_subject
            )


def test_service_validity_is_the_profile(both: dict[Environment, EnvironmentPki]) -> None:
    pki = both[Environment.ACCEPTANCE]
    assert pki.tsl.certificate.not_valid_after_utc == profiles.max_not_after(
        NOW, profiles.tsl_signer_profile(Environment.ACCEPTANCE).validity_months
    )


def test_trusted_list_signer_is_self_signed_and_pinnable(both: dict[Environment, EnvironmentPki]) -> None:
    """Like the Belgian scheme operator's signer: self-signed, CA:FALSE, verifiable on its own
    (the guide's `xmlsec1 --trusted-pem <signer>` needs exactly that)."""
    for pki in both.values():
        cert = pki.tsl.certificate
        assert cert.issuer == cert.subject
        cert.verify_directly_issued_by(cert)
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        assert lint.blocking(lint.lint_certificate(cert.public_bytes(DER))) == []
