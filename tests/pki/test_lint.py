"""pkilint in-process wrappers, the blocking filter and allowlist, and the fast gate's cost."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ehealth_certs.environment import Environment
from ehealth_certs.pki import der, issuer, lint, profiles
from ehealth_certs.pki.issuer import CaKey
from ehealth_certs.pki.signing import SoftwareSigner

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DER = serialization.Encoding.DER


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


@pytest.fixture(scope="module")
def ca() -> CaKey:
    signer = SoftwareSigner.generate_rsa(2048)
    profile = profiles.root_ca_profile(Environment.ACCEPTANCE)
    start, end = profiles.validity_window(profile, NOW, datetime(9999, 1, 1, tzinfo=UTC))
    prepared = issuer.prepare_root(
        signer=signer,
        profile=profile,
        subject=_name("Lint Root"),
        serial=issuer.random_serial(),
        not_before=start,
        not_after=end,
    )
    return CaKey(issuer.sign_root(signer, prepared), signer)


@pytest.fixture(scope="module")
def leaf_key() -> SoftwareSigner:
    return SoftwareSigner.generate_rsa(2048)


def _private(ca: CaKey) -> rsa.RSAPrivateKey:
    """Tests build deliberately bad documents outside the issuer, so they need the raw test key."""
    assert isinstance(ca.signer, SoftwareSigner) and isinstance(ca.signer._key, rsa.RSAPrivateKey)
    return ca.signer._key


def _raw_leaf(ca: CaKey, leaf_key: SoftwareSigner, *, aki: bool = True, key_cert_sign: bool = False) -> bytes:
    """A certificate built straight with cryptography (outside the issuer) to feed pkilint bad input."""
    ca_key = _private(ca)
    builder = (
        x509.CertificateBuilder()
        .issuer_name(ca.certificate.subject)
        .subject_name(_name("leaf"))
        .public_key(leaf_key.public_key)
        .serial_number(issuer.random_serial())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, key_cert_sign, False, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key), False)
    )
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_private(ca).public_key()), False
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(DER)


def test_blocking_filters_severity_and_allowlist() -> None:
    findings = [
        lint.Finding("INFO", "pkix.subject_key_identifier_method_1_identified", "x"),
        lint.Finding("NOTICE", "n", "x"),
        lint.Finding("WARNING", "w", "x"),
        lint.Finding("ERROR", "e", "x"),
        lint.Finding("FATAL", "f", "x"),
        lint.Finding("WARNING", next(iter(lint.ALLOWLIST)), "x"),
    ]
    assert [f.code for f in lint.blocking(findings)] == ["w", "e", "f"]
    assert all(reason.strip() for reason in lint.ALLOWLIST.values())


def test_pkilint_finds_a_missing_aki_and_a_ca_usage_on_an_end_entity(
    ca: CaKey, leaf_key: SoftwareSigner
) -> None:
    clean = _raw_leaf(ca, leaf_key)
    assert lint.blocking(lint.lint_certificate(clean, ca.certificate.public_bytes(DER))) == []
    no_aki = {f.code for f in lint.blocking(lint.lint_certificate(_raw_leaf(ca, leaf_key, aki=False)))}
    assert "pkix.authority_key_identifier_extension_absent" in no_aki
    ee_cert_sign = lint.blocking(lint.lint_certificate(_raw_leaf(ca, leaf_key, key_cert_sign=True)))
    assert ee_cert_sign, "pkilint accepted keyCertSign on an end entity"


def test_chain_lint_detects_a_foreign_issuer(ca: CaKey, leaf_key: SoftwareSigner) -> None:
    other_signer = SoftwareSigner.generate_rsa(2048)
    profile = profiles.root_ca_profile(Environment.ACCEPTANCE)
    start, end = profiles.validity_window(profile, NOW, datetime(9999, 1, 1, tzinfo=UTC))
    other = issuer.sign_root(
        other_signer,
        issuer.prepare_root(
            signer=other_signer,
            profile=profile,
            subject=_name("Other Root"),
            serial=issuer.random_serial(),
            not_before=start,
            not_after=end,
        ),
    )
    codes = {
        f.code for f in lint.blocking(lint.lint_certificate(_raw_leaf(ca, leaf_key), other.public_bytes(DER)))
    }
    assert codes  # name bytes, key identifier and signature all disagree


def test_undecodable_documents_are_fatal() -> None:
    for finding in (
        lint.lint_certificate(b"\x30\x03\x02\x01\x01"),
        lint.lint_crl(b"\x30\x00"),
        lint.lint_ocsp_response(b"junk"),
    ):
        assert lint.blocking(finding) and finding[0].severity == "FATAL"


def test_pkilint_br_refuses_a_30_day_crl(ca: CaKey) -> None:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=30))
        .add_extension(x509.CRLNumber(1), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(_private(ca).public_key()), False)
        .sign(_private(ca), hashes.SHA256())
    )
    codes = {f.code for f in lint.blocking(lint.lint_crl(crl.public_bytes(DER)))}
    assert "cabf.crl_invalid_validity_period" in codes


@pytest.mark.parametrize(
    ("serial", "code"),
    [
        (0, "ehcerts.serial_not_positive"),
        (-5, "ehcerts.serial_not_positive"),
        (2**159, "ehcerts.serial_longer_than_20_octets"),
        (2**167, "ehcerts.serial_longer_than_20_octets"),
    ],
)
def test_check_serial(serial: int, code: str) -> None:
    assert [f.code for f in lint.check_serial(serial)] == [code]


def test_check_serial_accepts_the_range_ends() -> None:
    assert lint.check_serial(1) == [] and lint.check_serial(2**159 - 1) == []
    assert len(der.integer_content(2**159 - 1)) == 20


def test_gate_is_fast_and_pkilint_is_not(ca: CaKey, leaf_key: SoftwareSigner) -> None:
    """The gate must stay far below the ~7 ms pkilint needs per certificate (timing reported, not tuned)."""
    profile = profiles.leaf_profile(Environment.ACCEPTANCE)
    start, end = profiles.validity_window(profile, NOW, ca.certificate.not_valid_after_utc)
    prepared = issuer.prepare_leaf(
        ca=ca,
        profile=profile,
        subject=_name("SSIN=79121430944"),
        public_key=leaf_key.public_key,
        serial=issuer.random_serial(),
        not_before=start,
        not_after=end,
        crl_url="http://x.be/crl",
        ocsp_url="http://x.be/ocsp",
        ca_issuers_url="http://x.be/ca.crt",
    )
    candidate = x509.load_der_x509_certificate(prepared.candidate_der)
    subject_der = der.tbs_certificate_fields(ca.certificate.public_bytes(DER))["subject"]
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    started = time.perf_counter()
    for _ in range(200):
        findings = lint.check_certificate(
            candidate,
            prepared.candidate_der,
            profile=profile,
            issuer_subject_der=subject_der,
            issuer_key_id=ski,
            issuer_not_after=ca.certificate.not_valid_after_utc,
        )
    gate_ms = (time.perf_counter() - started) / 200 * 1000
    assert findings == []
    lint.lint_certificate(prepared.candidate_der)  # warm pkilint's tables
    started = time.perf_counter()
    for _ in range(5):
        lint.lint_certificate(prepared.candidate_der)
    pkilint_ms = (time.perf_counter() - started) / 5 * 1000
    print(f"gate {gate_ms:.3f} ms/cert, pkilint {pkilint_ms:.1f} ms/cert")
    assert gate_ms < 2.0
    assert lint.blocking(lint.lint_certificate(prepared.candidate_der)) == []
    # Under the real CA only the throw-away signature is wrong: the candidate is the certificate minus that.
    chain = {
        f.code
        for f in lint.blocking(
            lint.lint_certificate(prepared.candidate_der, ca.certificate.public_bytes(DER))
        )
    }
    assert chain == {"pkix.signature_verification_failed"}, chain
