"""The signing place: two-step issuance, the pre-sign gate, serials, time encodings, openssl as the judge."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import crl as crl_module
from ehealth_certs.pki import der, issuer, lint, profiles
from ehealth_certs.pki.issuer import CaKey, RevokedEntry
from ehealth_certs.pki.signing import PublicKey, SignatureScheme, SoftwareSigner

DER = serialization.Encoding.DER
NOW = datetime(2030, 1, 1, tzinfo=UTC)
BASE = "http://pki.ehealth-certs.be"
CRL_URL, OCSP_URL, CA_ISSUERS_URL = f"{BASE}/crl", f"{BASE}/ocsp", f"{BASE}/issuing.crt"


@dataclass
class CountingSigner:
    """Wraps a real signer and counts how often it signs (the gate must stop broken objects before it)."""

    inner: SoftwareSigner
    calls: list[bytes] = field(default_factory=list)

    @property
    def public_key(self) -> PublicKey:
        return self.inner.public_key

    @property
    def scheme(self) -> SignatureScheme:
        return self.inner.scheme

    def sign(self, data: bytes) -> bytes:
        self.calls.append(data)
        return self.inner.sign(data)


def _name(cn: str, cn_type: x509.name._ASN1Type | None = None) -> x509.Name:
    cn_attr = (
        x509.NameAttribute(NameOID.COMMON_NAME, cn)
        if cn_type is None
        else x509.NameAttribute(NameOID.COMMON_NAME, cn, cn_type)
    )
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"), cn_attr])


@dataclass(frozen=True)
class MiniPki:
    root: CaKey
    issuing: CaKey
    issuing_counter: CountingSigner


@pytest.fixture(scope="module")
def pki() -> MiniPki:
    """A long-lived test hierarchy (RSA-2048 to stay fast; the ceremony tests cover RSA-4096)."""
    root_signer = SoftwareSigner.generate_rsa(2048)
    long_root = replace(profiles.root_ca_profile(Environment.ACCEPTANCE), validity_months=360)
    # The CN is a PrintableString on purpose: the issuer field must copy these bytes, not re-encode UTF8.
    root_name = _name("Test Root CA", x509.name._ASN1Type.PrintableString)
    start, end = profiles.validity_window(long_root, NOW, datetime(9999, 1, 1, tzinfo=UTC))
    prepared = issuer.prepare_root(
        signer=root_signer,
        profile=long_root,
        subject=root_name,
        serial=issuer.random_serial(),
        not_before=start,
        not_after=end,
    )
    root = CaKey(issuer.sign_root(root_signer, prepared), root_signer)
    counter = CountingSigner(SoftwareSigner.generate_rsa(2048))
    long_issuing = replace(profiles.issuing_ca_profile(Environment.ACCEPTANCE), validity_months=300)
    start, end = profiles.validity_window(long_issuing, NOW, root.certificate.not_valid_after_utc)
    prepared = issuer.prepare_ca(
        ca=root,
        profile=long_issuing,
        subject=_name("Test Issuing CA"),
        public_key=counter.public_key,
        serial=issuer.random_serial(),
        not_before=start,
        not_after=end,
        crl_url=f"{BASE}/root.crl",
        ca_issuers_url=f"{BASE}/root.crt",
    )
    issuing = CaKey(issuer.sign_prepared(root, prepared), counter)
    return MiniPki(root, issuing, counter)


@pytest.fixture(scope="module")
def subject_key() -> PublicKey:
    return SoftwareSigner.generate_rsa(2048).public_key


def _prepare(
    pki: MiniPki,
    key: PublicKey,
    *,
    profile: profiles.LeafProfile | None = None,
    serial: int | None = None,
    not_before: datetime = NOW,
    not_after: datetime | None = None,
) -> issuer.PreparedCertificate:
    profile = profile or profiles.leaf_profile(Environment.PRODUCTION)
    if not_after is None:
        start, end = profiles.validity_window(
            profile, not_before, pki.issuing.certificate.not_valid_after_utc
        )
    else:  # the caller's own window, to reach the gate
        start, end = not_before, not_after
    return issuer.prepare_leaf(
        ca=pki.issuing,
        profile=profile,
        subject=_name("SSIN=79121430944"),
        public_key=key,
        serial=issuer.random_serial() if serial is None else serial,
        not_before=start,
        not_after=end,
        crl_url=CRL_URL,
        ocsp_url=OCSP_URL,
        ca_issuers_url=CA_ISSUERS_URL,
    )


def _pem(path: Path, cert: x509.Certificate) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_leaf_matches_the_production_profile(pki: MiniPki, subject_key: PublicKey) -> None:
    calls_before = len(pki.issuing_counter.calls)
    prepared = _prepare(pki, subject_key)
    assert len(pki.issuing_counter.calls) == calls_before  # preparing never signs
    cert = issuer.sign_prepared(pki.issuing, prepared)
    assert len(pki.issuing_counter.calls) == calls_before + 1
    assert pki.issuing_counter.calls[-1] == prepared.tbs_der
    assert cert.tbs_certificate_bytes == prepared.tbs_der
    assert cert.serial_number == prepared.serial

    ext = cert.extensions
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert (ku.value.digital_signature, ku.value.content_commitment, ku.value.key_encipherment) == (True,) * 3
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.data_encipherment)
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    spk = der.tbs_certificate_fields(cert.public_bytes(DER))["subject_public_key"]
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == hashlib.sha1(spk).digest()
    issuing_ski = pki.issuing.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuing_ski.value.digest
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(CRL_URL)]
    aia = {
        (d.access_method, d.access_location.value)
        for d in ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    }
    assert aia == {
        (x509.oid.AuthorityInformationAccessOID.OCSP, OCSP_URL),
        (x509.oid.AuthorityInformationAccessOID.CA_ISSUERS, CA_ISSUERS_URL),
    }
    with pytest.raises(x509.ExtensionNotFound):
        ext.get_extension_for_class(x509.CertificatePolicies)
    assert len(ext) == 7
    # Issuer name bytes are copied from the CA's subject, PrintableString CN and all.
    fields = der.tbs_certificate_fields(cert.public_bytes(DER))
    assert (
        fields["issuer"] == der.tbs_certificate_fields(pki.issuing.certificate.public_bytes(DER))["subject"]
    )


def test_openssl_verifies_the_chain_and_pkilint_is_clean(
    pki: MiniPki, subject_key: PublicKey, tmp_path: Path
) -> None:
    cert = issuer.sign_prepared(pki.issuing, _prepare(pki, subject_key))
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-attime",
            str(int(NOW.timestamp()) + 60),
            "-CAfile",
            _pem(tmp_path / "root.pem", pki.root.certificate),
            "-untrusted",
            _pem(tmp_path / "issuing.pem", pki.issuing.certificate),
            _pem(tmp_path / "leaf.pem", cert),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": OK")
    issuing_der = pki.issuing.certificate.public_bytes(DER)
    assert lint.blocking(lint.lint_certificate(cert.public_bytes(DER), issuing_der)) == []
    assert lint.blocking(lint.lint_certificate(issuing_der, pki.root.certificate.public_bytes(DER))) == []
    root_der = pki.root.certificate.public_bytes(DER)
    assert lint.blocking(lint.lint_certificate(root_der, root_der)) == []


def test_a_one_byte_change_breaks_the_signature(pki: MiniPki, subject_key: PublicKey) -> None:
    cert_der = bytearray(issuer.sign_prepared(pki.issuing, _prepare(pki, subject_key)).public_bytes(DER))
    cert_der[-10] ^= 0x01
    bad = x509.load_der_x509_certificate(bytes(cert_der))
    with pytest.raises(InvalidSignature):
        bad.verify_directly_issued_by(pki.issuing.certificate)


def test_validity_is_exactly_36_months_inclusive(pki: MiniPki, subject_key: PublicKey) -> None:
    cert = issuer.sign_prepared(
        pki.issuing, _prepare(pki, subject_key, not_before=datetime(2031, 1, 31, tzinfo=UTC))
    )
    assert cert.not_valid_before_utc == datetime(2031, 1, 31, tzinfo=UTC)
    assert cert.not_valid_after_utc == datetime(2034, 1, 30, 23, 59, 59, tzinfo=UTC)
    accept = issuer.sign_prepared(
        pki.issuing, _prepare(pki, subject_key, profile=profiles.leaf_profile(Environment.ACCEPTANCE))
    )
    assert accept.not_valid_after_utc - accept.not_valid_before_utc + timedelta(seconds=1) == timedelta(
        days=365
    )


def _validity_tags(cert: x509.Certificate) -> tuple[int, int]:
    validity = der.tbs_certificate_fields(cert.public_bytes(DER))["validity"]
    _, start, end = der.read_tlv(validity)
    tags = [c[0] for c in der.children(validity, start, end)]
    return tags[0], tags[1]


def test_utctime_through_2049_generalizedtime_from_2050(pki: MiniPki, subject_key: PublicKey) -> None:
    last_utc = issuer.sign_prepared(
        pki.issuing, _prepare(pki, subject_key, not_before=datetime(2047, 1, 1, tzinfo=UTC))
    )
    assert last_utc.not_valid_after_utc == datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert _validity_tags(last_utc) == (der.TAG_UTC_TIME, der.TAG_UTC_TIME)
    first_gen = issuer.sign_prepared(
        pki.issuing, _prepare(pki, subject_key, not_before=datetime(2047, 1, 1, 0, 0, 1, tzinfo=UTC))
    )
    assert first_gen.not_valid_after_utc == datetime(2050, 1, 1, tzinfo=UTC)
    assert _validity_tags(first_gen) == (der.TAG_UTC_TIME, der.TAG_GENERALIZED_TIME)
    raw = der.tbs_certificate_fields(first_gen.public_bytes(DER))["validity"]
    assert b"20500101000000Z" in raw and b"470101000001Z" in raw


def test_never_beyond_the_issuer(pki: MiniPki, subject_key: PublicKey) -> None:
    issuer_end = pki.issuing.certificate.not_valid_after_utc
    profile = profiles.leaf_profile(Environment.PRODUCTION)
    latest_start = profiles.add_months(issuer_end + timedelta(seconds=1), -36)
    _, end = profiles.validity_window(profile, latest_start, issuer_end)
    assert end == issuer_end
    with pytest.raises(DomainError) as err:
        profiles.validity_window(profile, latest_start + timedelta(seconds=1), issuer_end)
    assert err.value.kind is ErrorKind.CONFLICT
    # The gate refuses too when a caller computes its own window.
    calls = len(pki.issuing_counter.calls)
    with pytest.raises(DomainError) as err:
        _prepare(
            pki,
            subject_key,
            not_before=issuer_end - timedelta(days=10),
            not_after=issuer_end + timedelta(seconds=1),
        )
    assert err.value.kind is ErrorKind.LINT_FAILURE
    assert "ehcerts.validity_beyond_issuer" in err.value.detail
    assert len(pki.issuing_counter.calls) == calls


def test_longer_than_the_profile_is_refused(pki: MiniPki, subject_key: PublicKey) -> None:
    with pytest.raises(DomainError) as err:
        _prepare(pki, subject_key, not_after=datetime(2033, 1, 1, tzinfo=UTC))  # 36 months + 1 s
    assert err.value.kind is ErrorKind.LINT_FAILURE
    assert "validity_longer_than_profile" in err.value.detail


# -- the five broken profiles: each stopped by the gate before the real signer ---------------------------


def _assert_stopped(pki: MiniPki, err: pytest.ExceptionInfo[DomainError], code: str, calls: int) -> None:
    assert err.value.kind is ErrorKind.LINT_FAILURE
    assert code in {f.code for f in err.value.params["findings"]}
    assert len(pki.issuing_counter.calls) == calls


def test_broken_profile_without_aki(pki: MiniPki, subject_key: PublicKey) -> None:
    good = profiles.leaf_profile(Environment.PRODUCTION)
    broken = replace(good, extensions=good.extensions - {profiles.AUTHORITY_KEY_IDENTIFIER})
    calls = len(pki.issuing_counter.calls)
    with pytest.raises(DomainError) as err:
        _prepare(pki, subject_key, profile=broken)
    _assert_stopped(pki, err, "ehcerts.authority_key_identifier_missing", calls)


def test_broken_21_octet_serial(pki: MiniPki, subject_key: PublicKey) -> None:
    serial = 2**160 + 1
    assert len(der.integer_content(serial)) == 21
    calls = len(pki.issuing_counter.calls)
    with pytest.raises(DomainError) as err:
        _prepare(pki, subject_key, serial=serial)
    _assert_stopped(pki, err, "ehcerts.serial_longer_than_20_octets", calls)
    with pytest.raises(DomainError) as err:  # 2^159 already needs 21 octets (sign byte)
        _prepare(pki, subject_key, serial=2**159)
    _assert_stopped(pki, err, "ehcerts.serial_longer_than_20_octets", calls)
    with pytest.raises(DomainError) as err:
        _prepare(pki, subject_key, serial=0)
    _assert_stopped(pki, err, "ehcerts.serial_not_positive", calls)
    assert _prepare(pki, subject_key, serial=2**159 - 1).serial == 2**159 - 1


def test_broken_end_entity_with_key_cert_sign(pki: MiniPki, subject_key: PublicKey) -> None:
    good = profiles.leaf_profile(Environment.PRODUCTION)
    broken = replace(good, key_usage=good.key_usage | {"key_cert_sign"})
    with pytest.raises(DomainError) as loaded:
        profiles.validate_leaf_profile(broken)  # the loader refuses it...
    assert loaded.value.kind is ErrorKind.CONFIGURATION
    calls = len(pki.issuing_counter.calls)
    with pytest.raises(DomainError) as err:  # ...and so does the gate when it is smuggled in
        _prepare(pki, subject_key, profile=broken)
    _assert_stopped(pki, err, "ehcerts.end_entity_has_ca_key_usage", calls)


def test_broken_crl_valid_11_days(pki: MiniPki) -> None:
    calls = len(pki.issuing_counter.calls)
    with pytest.raises(DomainError) as err:
        issuer.sign_crl(
            pki.issuing, number=1, this_update=NOW, next_update=NOW + timedelta(days=11), entries=[]
        )
    _assert_stopped(pki, err, "ehcerts.crl_validity_period_too_long", calls)


def test_broken_crl_with_empty_revoked_sequence(pki: MiniPki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crl_module, "encode_entries", lambda entries: der.sequence())
    calls = len(pki.issuing_counter.calls)
    with pytest.raises(DomainError) as err:
        issuer.sign_crl(
            pki.issuing, number=1, this_update=NOW, next_update=NOW + timedelta(days=7), entries=[]
        )
    _assert_stopped(pki, err, "ehcerts.crl_revoked_certificates_empty", calls)


# -- serials ----------------------------------------------------------------------------------------------


def test_ten_thousand_serials_are_unique_in_range_and_balanced() -> None:
    serials = [issuer.random_serial() for _ in range(10_000)]
    assert len(set(serials)) == len(serials)
    assert all(0 < s < 2**159 and len(der.integer_content(s)) <= 20 for s in serials)
    for bit in range(128):
        share = sum((s >> bit) & 1 for s in serials) / len(serials)
        assert 0.47 <= share <= 0.53, (bit, share)
    # The top bits are random too (159 bits, not 63): some serial has bit 158 set.
    assert any(s >> 158 for s in serials)


def test_emitted_serials_are_the_prepared_ones(pki: MiniPki, subject_key: PublicKey) -> None:
    certs = [issuer.sign_prepared(pki.issuing, _prepare(pki, subject_key)) for _ in range(50)]
    serials = [c.serial_number for c in certs]
    assert len(set(serials)) == 50
    for cert in certs:
        raw = der.tbs_certificate_fields(cert.public_bytes(DER))["serial"]
        _, start, end = der.read_tlv(raw)
        assert 0 < end - start <= 20
        assert raw[start] < 0x80  # positive


# -- misuse -----------------------------------------------------------------------------------------------


def test_signing_under_another_ca_is_refused(pki: MiniPki, subject_key: PublicKey) -> None:
    prepared = _prepare(pki, subject_key)
    with pytest.raises(DomainError) as err:
        issuer.sign_prepared(pki.root, prepared)
    assert err.value.kind is ErrorKind.CONFLICT


def test_a_signer_whose_key_does_not_match_the_ca_is_caught(pki: MiniPki, subject_key: PublicKey) -> None:
    impostor = CaKey(pki.issuing.certificate, SoftwareSigner.generate_rsa(2048))
    with pytest.raises(DomainError) as err:
        issuer.sign_prepared(impostor, _prepare(pki, subject_key))
    assert err.value.kind is ErrorKind.INTERNAL


def test_an_ec_ca_signs_and_ec_keys_cannot_encipher(pki: MiniPki) -> None:
    ec_ca_signer = SoftwareSigner.generate_p256()
    profile = replace(profiles.issuing_ca_profile(Environment.ACCEPTANCE), validity_months=60)
    start, end = profiles.validity_window(profile, NOW, pki.root.certificate.not_valid_after_utc)
    ec_ca = CaKey(
        issuer.sign_prepared(
            pki.root,
            issuer.prepare_ca(
                ca=pki.root,
                profile=profile,
                subject=_name("EC Issuing CA"),
                public_key=ec_ca_signer.public_key,
                serial=issuer.random_serial(),
                not_before=start,
                not_after=end,
                crl_url=f"{BASE}/root.crl",
                ca_issuers_url=f"{BASE}/root.crt",
            ),
        ),
        ec_ca_signer,
    )
    leaf_profile = profiles.leaf_profile(Environment.ACCEPTANCE)
    start, end = profiles.validity_window(leaf_profile, NOW, ec_ca.certificate.not_valid_after_utc)

    def leaf(key: PublicKey) -> x509.Certificate:
        return issuer.sign_prepared(
            ec_ca,
            issuer.prepare_leaf(
                ca=ec_ca,
                profile=leaf_profile,
                subject=_name("SSIN=79121430944"),
                public_key=key,
                serial=issuer.random_serial(),
                not_before=start,
                not_after=end,
                crl_url=CRL_URL,
                ocsp_url=OCSP_URL,
                ca_issuers_url=CA_ISSUERS_URL,
            ),
        )

    cert = leaf(SoftwareSigner.generate_rsa(2048).public_key)
    assert cert.signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    cert.verify_directly_issued_by(ec_ca.certificate)
    assert (
        lint.blocking(lint.lint_certificate(cert.public_bytes(DER), ec_ca.certificate.public_bytes(DER)))
        == []
    )
    # keyEncipherment is meaningless for an EC key (pkilint: key_usage_value_prohibited_for_ec): refused.
    with pytest.raises(DomainError) as err:
        leaf(SoftwareSigner.generate_p256().public_key)
    assert "ehcerts.key_usage_encipherment_with_ec_key" in {f.code for f in err.value.params["findings"]}


def test_bad_urls_are_refused(pki: MiniPki, subject_key: PublicKey) -> None:
    profile = profiles.leaf_profile(Environment.PRODUCTION)
    start, end = profiles.validity_window(profile, NOW, pki.issuing.certificate.not_valid_after_utc)
    with pytest.raises(DomainError) as err:
        issuer.prepare_leaf(
            ca=pki.issuing,
            profile=profile,
            subject=_name("x"),
            public_key=subject_key,
            serial=issuer.random_serial(),
            not_before=start,
            not_after=end,
            crl_url="ldap://x/crl",
            ocsp_url=OCSP_URL,
            ca_issuers_url=CA_ISSUERS_URL,
        )
    assert err.value.kind is ErrorKind.CONFIGURATION


def test_crl_and_ocsp_signing_go_through_the_counting_signer(pki: MiniPki) -> None:
    calls = len(pki.issuing_counter.calls)
    issuer.sign_crl(
        pki.issuing,
        number=7,
        this_update=NOW,
        next_update=NOW + timedelta(days=7),
        entries=[RevokedEntry(12345, NOW, x509.ReasonFlags.superseded)],
    )
    assert len(pki.issuing_counter.calls) == calls + 1
