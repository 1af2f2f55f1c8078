"""Profiles are data, validated when loaded; validity windows are inclusive and never outlive the issuer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import profiles

FAR = datetime(2100, 1, 1, tzinfo=UTC)


def test_production_leaf_profile_is_the_real_certificate() -> None:
    p = profiles.leaf_profile(Environment.PRODUCTION)
    assert p.environment is Environment.PRODUCTION and p.validity_months == 36
    assert p.key_usage == {"digital_signature", "content_commitment", "key_encipherment"}
    assert p.key_usage_critical
    assert p.extended_key_usage == (
        ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,
        ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
    )
    assert p.extensions == {
        "basicConstraints",
        "keyUsage",
        "extendedKeyUsage",
        "subjectKeyIdentifier",
        "authorityKeyIdentifier",
        "cRLDistributionPoints",
        "authorityInfoAccess",
    }
    assert profiles.leaf_profile(Environment.ACCEPTANCE).validity_months == 12


def test_service_profiles() -> None:
    env = Environment.ACCEPTANCE
    ocsp = profiles.ocsp_responder_profile(env)
    assert profiles.OCSP_NO_CHECK in ocsp.extensions
    assert ocsp.extended_key_usage == (ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string,)
    assert profiles.etkra_signer_profile(env).key_usage == {"digital_signature"}
    tsl = profiles.tsl_signer_profile(env)
    assert tsl.extended_key_usage == ("0.4.0.2231.3.0",)
    assert tsl.key_usage == {"digital_signature", "content_commitment"}
    assert profiles.root_ca_profile(env).validity_months == 300
    assert profiles.issuing_ca_profile(env).path_length == 0


@pytest.mark.parametrize(
    "change",
    [
        {"key_usage": frozenset({"digital_signature", "key_cert_sign"})},
        {"key_usage": frozenset({"crl_sign"})},
        {"key_usage": frozenset()},
        {"key_usage": frozenset({"sign_everything"})},
        {"validity_months": 0},
        {"validity_months": 40},
        {"extensions": frozenset({"basicConstraints", "keyUsage", "subjectKeyIdentifier"})},
        {
            "extensions": frozenset(
                {
                    "basicConstraints",
                    "keyUsage",
                    "subjectKeyIdentifier",
                    "authorityKeyIdentifier",
                    "certificatePolicies",
                }
            )
        },
    ],
)
def test_loader_refuses_broken_leaf_profiles(change: dict[str, object]) -> None:
    broken = replace(profiles.leaf_profile(Environment.PRODUCTION), **change)  # type: ignore[arg-type]
    with pytest.raises(DomainError) as err:
        profiles.validate_leaf_profile(broken)
    assert err.value.kind is ErrorKind.CONFIGURATION


def test_loader_refuses_broken_ca_profiles() -> None:
    issuing = profiles.issuing_ca_profile(Environment.PRODUCTION)
    for broken in (
        replace(issuing, extensions=issuing.extensions - {"authorityKeyIdentifier"}),
        replace(issuing, extensions=issuing.extensions | {"extendedKeyUsage"}),
        replace(issuing, validity_months=0),
    ):
        with pytest.raises(DomainError) as err:
            profiles.validate_ca_profile(broken)
        assert err.value.kind is ErrorKind.CONFIGURATION


@pytest.mark.parametrize(
    ("env", "start", "end"),
    [
        (
            Environment.PRODUCTION,
            datetime(2025, 1, 15, 10, 0, tzinfo=UTC),
            datetime(2028, 1, 15, 9, 59, 59, tzinfo=UTC),
        ),
        (
            Environment.ACCEPTANCE,
            datetime(2025, 1, 15, 10, 0, tzinfo=UTC),
            datetime(2026, 1, 15, 9, 59, 59, tzinfo=UTC),
        ),
        # calendar months: 29 Feb + 12 months is 28 Feb; + 36 months lands on 28 Feb too
        (
            Environment.ACCEPTANCE,
            datetime(2024, 2, 29, tzinfo=UTC),
            datetime(2025, 2, 27, 23, 59, 59, tzinfo=UTC),
        ),
        (
            Environment.PRODUCTION,
            datetime(2024, 2, 29, tzinfo=UTC),
            datetime(2027, 2, 27, 23, 59, 59, tzinfo=UTC),
        ),
        (
            Environment.PRODUCTION,
            datetime(2025, 10, 31, tzinfo=UTC),
            datetime(2028, 10, 30, 23, 59, 59, tzinfo=UTC),
        ),
    ],
)
def test_validity_window_is_inclusive(env: Environment, start: datetime, end: datetime) -> None:
    assert profiles.validity_window(profiles.leaf_profile(env), start, FAR) == (start, end)


def test_window_normalises_to_utc_seconds() -> None:
    cet = timezone(timedelta(hours=1))
    start, end = profiles.validity_window(
        profiles.leaf_profile(Environment.ACCEPTANCE),
        datetime(2025, 1, 15, 11, 0, 0, 999_999, tzinfo=cet),
        FAR,
    )
    assert start == datetime(2025, 1, 15, 10, 0, tzinfo=UTC) and start.microsecond == 0
    assert end.tzinfo is UTC


def test_window_refuses_to_outlive_the_issuer() -> None:
    profile = profiles.leaf_profile(Environment.PRODUCTION)
    start = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
    exact_end = datetime(2028, 1, 15, 9, 59, 59, tzinfo=UTC)
    assert profiles.validity_window(profile, start, exact_end)[1] == exact_end
    with pytest.raises(DomainError) as err:
        profiles.validity_window(profile, start, exact_end - timedelta(seconds=1))
    assert err.value.kind is ErrorKind.CONFLICT


def test_naive_times_are_refused() -> None:
    with pytest.raises(DomainError) as err:
        profiles.validity_window(profiles.leaf_profile(Environment.PRODUCTION), datetime(2025, 1, 1), FAR)
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_add_months_handles_negative_and_year_ends() -> None:
    assert profiles.add_months(datetime(2025, 12, 31, tzinfo=UTC), 2) == datetime(2026, 2, 28, tzinfo=UTC)
    assert profiles.add_months(datetime(2025, 3, 31, tzinfo=UTC), -1) == datetime(2025, 2, 28, tzinfo=UTC)
    assert profiles.add_months(datetime(2025, 1, 1, tzinfo=UTC), 120) == datetime(2035, 1, 1, tzinfo=UTC)
