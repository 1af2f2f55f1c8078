"""CRLs: shape, openssl as the judge (crl -text, verify -crl_check), pkilint BR, gate rules, size budget."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import ceremony, crl, der, issuer, lint, profiles
from ehealth_certs.pki.ceremony import EnvironmentPki
from ehealth_certs.pki.issuer import RevokedEntry
from ehealth_certs.pki.signing import SoftwareSigner

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BASE = "http://pki.ehealth-certs.be"
PEM = serialization.Encoding.PEM


@pytest.fixture(scope="module")
def pki() -> EnvironmentPki:
    return ceremony.create_environment_pki(Environment.PRODUCTION, now=NOW, base_url=BASE)


@pytest.fixture(scope="module")
def leaves(pki: EnvironmentPki) -> list[x509.Certificate]:
    profile = profiles.leaf_profile(Environment.PRODUCTION)
    start, end = profiles.validity_window(profile, NOW, pki.issuing.certificate.not_valid_after_utc)
    crl_url, ocsp_url, ca_issuers_url = ceremony.leaf_urls(Environment.PRODUCTION, BASE)
    key = SoftwareSigner.generate_rsa(2048).public_key
    out = []
    for _ in range(2):
        prepared = issuer.prepare_leaf(
            ca=pki.issuing,
            profile=profile,
            subject=ceremony.ca_name(Environment.PRODUCTION, "Leaf"),
            public_key=key,
            serial=issuer.random_serial(),
            not_before=start,
            not_after=end,
            crl_url=crl_url,
            ocsp_url=ocsp_url,
            ca_issuers_url=ca_issuers_url,
        )
        out.append(issuer.sign_prepared(pki.issuing, prepared))
    return out


def _sign(pki: EnvironmentPki, entries: list[RevokedEntry], number: int = 1, days: float = 7) -> bytes:
    return issuer.sign_crl(
        pki.issuing, number=number, this_update=NOW, next_update=NOW + timedelta(days=days), entries=entries
    )


def test_crl_content_and_openssl_text(pki: EnvironmentPki, tmp_path: Path) -> None:
    entries = [
        RevokedEntry(0x0123, NOW - timedelta(hours=1), x509.ReasonFlags.key_compromise),
        RevokedEntry(2**158 + 5, NOW - timedelta(days=2), None),
        RevokedEntry(0x80, NOW, x509.ReasonFlags.superseded),
    ]
    data = _sign(pki, entries, number=42)
    parsed = x509.load_der_x509_crl(data)
    assert parsed.is_signature_valid(pki.issuing.certificate.public_key())  # type: ignore[arg-type]
    assert parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    ski = pki.issuing.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert parsed.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ski
    assert parsed.next_update_utc == NOW + timedelta(days=7)
    by_serial = {r.serial_number: r for r in parsed}
    assert set(by_serial) == {e.serial for e in entries}
    assert by_serial[0x0123].extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.key_compromise
    )
    assert len(by_serial[2**158 + 5].extensions) == 0  # unknown reason: no reasonCode at all
    assert by_serial[0x80].revocation_date_utc == NOW

    path = tmp_path / "crl.der"
    path.write_bytes(data)
    text = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(path), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Version 2" in text and "X509v3 CRL Number: \n                42" in text
    assert "Serial Number: 0123" in text and "Key Compromise" in text and "Superseded" in text
    assert "Issuer: C = BE, O = ehealth-certs, CN = ehealth-certs Production Issuing CA 001" in text
    header = crl.read_tbs_header(der.split_signed(data)[0])
    assert (
        header.issuer
        == der.tbs_certificate_fields(pki.issuing.certificate.public_bytes(serialization.Encoding.DER))[
            "subject"
        ]
    )


def test_empty_crl_has_no_revoked_certificates_field(pki: EnvironmentPki, tmp_path: Path) -> None:
    data = _sign(pki, [])
    header = crl.read_tbs_header(der.split_signed(data)[0])
    assert not header.revoked_present
    path = tmp_path / "empty.der"
    path.write_bytes(data)
    text = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(path), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "No Revoked Certificates." in text
    assert lint.blocking(lint.lint_crl(data)) == []
    assert "pkix.crl_revoked_certificates_empty" not in {f.code for f in lint.lint_crl(data)}


def test_pkilint_br_is_clean_for_crl_and_arl(pki: EnvironmentPki) -> None:
    entries = [
        RevokedEntry(n, NOW, reason)
        for n, reason in enumerate(sorted(crl.SUBSCRIBER_CRL_REASONS, key=str), 1)
    ]
    assert lint.blocking(lint.lint_crl(_sign(pki, entries))) == []
    arl = issuer.sign_crl(
        pki.root,
        number=1,
        this_update=NOW,
        next_update=NOW + timedelta(days=365),
        entries=[RevokedEntry(9, NOW, x509.ReasonFlags.ca_compromise)],
    )
    assert lint.blocking(lint.lint_crl(arl, arl=True)) == []
    with pytest.raises(DomainError) as err:  # 12 months is the ARL ceiling
        issuer.sign_crl(
            pki.root, number=2, this_update=NOW, next_update=NOW + timedelta(days=366), entries=[]
        )
    assert err.value.kind is ErrorKind.LINT_FAILURE


def test_openssl_verify_crl_check(
    pki: EnvironmentPki, leaves: list[x509.Certificate], tmp_path: Path
) -> None:
    revoked, good = leaves
    data = _sign(pki, [RevokedEntry(revoked.serial_number, NOW, x509.ReasonFlags.key_compromise)])
    (tmp_path / "root.pem").write_bytes(pki.root.certificate.public_bytes(PEM))
    (tmp_path / "issuing.pem").write_bytes(pki.issuing.certificate.public_bytes(PEM))
    (tmp_path / "crl.pem").write_bytes(x509.load_der_x509_crl(data).public_bytes(PEM))

    def verify(cert: x509.Certificate) -> subprocess.CompletedProcess[str]:
        (tmp_path / "leaf.pem").write_bytes(cert.public_bytes(PEM))
        return subprocess.run(
            [
                "openssl",
                "verify",
                "-crl_check",
                "-attime",
                str(int(NOW.timestamp()) + 3600),
                "-CAfile",
                str(tmp_path / "root.pem"),
                "-untrusted",
                str(tmp_path / "issuing.pem"),
                "-CRLfile",
                str(tmp_path / "crl.pem"),
                str(tmp_path / "leaf.pem"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    ok = verify(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = verify(revoked)
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr


def test_entry_serials_are_byte_for_byte_the_certificates(
    pki: EnvironmentPki, leaves: list[x509.Certificate]
) -> None:
    data = _sign(pki, [RevokedEntry(c.serial_number, NOW, None) for c in leaves])
    for cert in leaves:
        raw = der.tbs_certificate_fields(cert.public_bytes(serialization.Encoding.DER))["serial"]
        assert raw in data


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([RevokedEntry(5, NOW, None), RevokedEntry(5, NOW, None)], "ehcerts.crl_duplicate_serial"),
        ([RevokedEntry(5, NOW, x509.ReasonFlags.unspecified)], "ehcerts.crl_entry_reason_not_allowed"),
        ([RevokedEntry(5, NOW, x509.ReasonFlags.certificate_hold)], "ehcerts.crl_entry_reason_not_allowed"),
        ([RevokedEntry(5, NOW, x509.ReasonFlags.ca_compromise)], "ehcerts.crl_entry_reason_not_allowed"),
        ([RevokedEntry(5, NOW + timedelta(seconds=1), None)], "ehcerts.crl_entry_revoked_after_this_update"),
        ([RevokedEntry(0, NOW, None)], "ehcerts.crl_entry_serial_out_of_range"),
    ],
)
def test_gate_refuses_bad_entries(pki: EnvironmentPki, entries: list[RevokedEntry], code: str) -> None:
    with pytest.raises(DomainError) as err:
        _sign(pki, entries)
    assert err.value.kind is ErrorKind.LINT_FAILURE
    assert code in {f.code for f in err.value.params["findings"]}


def test_validity_boundaries(pki: EnvironmentPki) -> None:
    assert _sign(pki, [], days=10)
    with pytest.raises(DomainError) as err:
        _sign(pki, [], days=10 + 1 / 86_400)
    assert err.value.kind is ErrorKind.LINT_FAILURE
    with pytest.raises(DomainError):
        _sign(pki, [], days=0)
    with pytest.raises(DomainError):
        _sign(pki, [], number=2**159)


def test_reason_codes_match_rfc_5280() -> None:
    assert crl.REASON_CODES[x509.ReasonFlags.remove_from_crl] == 8
    assert crl.REASON_CODES[x509.ReasonFlags.privilege_withdrawn] == 9
    assert len(set(crl.REASON_CODES.values())) == len(crl.REASON_CODES)


def test_100k_entries_build_and_sign_under_10_seconds(pki: EnvironmentPki) -> None:
    reasons = [x509.ReasonFlags.key_compromise, x509.ReasonFlags.superseded, None]
    entries = [
        RevokedEntry(issuer.random_serial(), NOW - timedelta(seconds=i), reasons[i % 3])
        for i in range(100_000)
    ]
    started = time.perf_counter()
    data = _sign(pki, entries, number=3)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, elapsed
    parsed = x509.load_der_x509_crl(data)
    assert len(parsed) == 100_000
    assert parsed.is_signature_valid(pki.issuing.certificate.public_key())  # type: ignore[arg-type]


@pytest.mark.slow
def test_one_million_entries_under_90_seconds(pki: EnvironmentPki) -> None:
    entries = [RevokedEntry(i * 7919 + 1, NOW, x509.ReasonFlags.superseded) for i in range(1_000_000)]
    started = time.perf_counter()
    data = _sign(pki, entries, number=4)
    elapsed = time.perf_counter() - started
    assert elapsed < 90, elapsed
    assert len(data) > 1_000_000 * 30
    header = crl.read_tbs_header(der.split_signed(data)[0])
    assert header.revoked_present and not header.revoked_empty
