"""Certificate profiles: data, validated when loaded (ARCHITECTURE rule 6).

The eHealth end-entity profile copies the real production certificate ``CBE=0809394427, IAM``
(ehealth-reference.md §8.2): KU critical digitalSignature + nonRepudiation + keyEncipherment, EKU clientAuth +
emailProtection, BasicConstraints critical CA:FALSE, SKI (the PublicKeyIdentifier), AKI, CRL DP and AIA, no
certificate policies. Production certificates live 36 months, acceptance ones 12 (§13.2, unverified for
acceptance), counted inclusively: ``notAfter = notBefore + months - 1 s`` (quality-bar §1.4).

A profile names the extensions a certificate carries; the issuer adds nothing else. The pre-sign gate
(``pki/lint.py``) re-checks every certificate against both the profile and the profile-independent rules, so
a profile built by hand without going through the loaders below is still stopped before signing.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.x509.oid import ExtendedKeyUsageOID

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind

# Extension names used in profiles (RFC 5280 names).
BASIC_CONSTRAINTS = "basicConstraints"
KEY_USAGE = "keyUsage"
EXTENDED_KEY_USAGE = "extendedKeyUsage"
SUBJECT_KEY_IDENTIFIER = "subjectKeyIdentifier"
AUTHORITY_KEY_IDENTIFIER = "authorityKeyIdentifier"
CRL_DISTRIBUTION_POINTS = "cRLDistributionPoints"
AUTHORITY_INFO_ACCESS = "authorityInfoAccess"
OCSP_NO_CHECK = "ocspNoCheck"

KNOWN_EXTENSIONS = frozenset(
    {
        BASIC_CONSTRAINTS,
        KEY_USAGE,
        EXTENDED_KEY_USAGE,
        SUBJECT_KEY_IDENTIFIER,
        AUTHORITY_KEY_IDENTIFIER,
        CRL_DISTRIBUTION_POINTS,
        AUTHORITY_INFO_ACCESS,
        OCSP_NO_CHECK,
    }
)

# Key usage bit names as in ``cryptography.x509.KeyUsage``'s constructor.
KEY_USAGE_NAMES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)
CA_ONLY_KEY_USAGES = frozenset({"key_cert_sign", "crl_sign"})

TSL_SIGNING_EKU = "0.4.0.2231.3.0"  # id-tsl-kp-tslSigning (ETSI TS 119 612)

MAX_END_ENTITY_MONTHS = 39  # 3 years + the 3-month replacement period seen in older eHealth documents


@dataclass(frozen=True)
class LeafProfile:
    """An end-entity profile: eHealth auth certificates and the platform's own service certificates."""

    name: str
    environment: Environment
    validity_months: int
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...]
    extensions: frozenset[str]
    key_usage_critical: bool = True
    extended_key_usage_critical: bool = False


@dataclass(frozen=True)
class CaProfile:
    """A CA profile: self-signed root (``path_length`` None) or issuing CA (``path_length`` 0)."""

    name: str
    environment: Environment
    validity_months: int
    path_length: int | None
    self_signed: bool
    extensions: frozenset[str]


_LEAF_EXTENSIONS = frozenset(
    {
        BASIC_CONSTRAINTS,
        KEY_USAGE,
        EXTENDED_KEY_USAGE,
        SUBJECT_KEY_IDENTIFIER,
        AUTHORITY_KEY_IDENTIFIER,
        CRL_DISTRIBUTION_POINTS,
        AUTHORITY_INFO_ACCESS,
    }
)


def validate_leaf_profile(profile: LeafProfile) -> LeafProfile:
    """Refuse a profile that breaks the end-entity rules (quality-bar §1.5); return it unchanged."""
    problems: list[str] = []
    if not 1 <= profile.validity_months <= MAX_END_ENTITY_MONTHS:
        problems.append(f"validity {profile.validity_months} months outside 1..{MAX_END_ENTITY_MONTHS}")
    unknown = profile.key_usage - set(KEY_USAGE_NAMES)
    if unknown:
        problems.append(f"unknown key usages {sorted(unknown)}")
    if profile.key_usage & CA_ONLY_KEY_USAGES:
        problems.append("an end entity never gets keyCertSign or cRLSign")
    if not profile.key_usage:
        problems.append("no key usage")
    if profile.extensions - KNOWN_EXTENSIONS:
        problems.append(f"unknown extensions {sorted(profile.extensions - KNOWN_EXTENSIONS)}")
    for required in (BASIC_CONSTRAINTS, KEY_USAGE, SUBJECT_KEY_IDENTIFIER, AUTHORITY_KEY_IDENTIFIER):
        if required not in profile.extensions:
            problems.append(f"{required} is required")
    if profile.extended_key_usage and EXTENDED_KEY_USAGE not in profile.extensions:
        problems.append("extended key usages given but the extension is not in the profile")
    if problems:
        raise DomainError(ErrorKind.CONFIGURATION, f"profile {profile.name}: " + "; ".join(problems))
    return profile


def validate_ca_profile(profile: CaProfile) -> CaProfile:
    problems: list[str] = []
    for required in (BASIC_CONSTRAINTS, KEY_USAGE, SUBJECT_KEY_IDENTIFIER):
        if required not in profile.extensions:
            problems.append(f"{required} is required")
    if AUTHORITY_KEY_IDENTIFIER not in profile.extensions:
        problems.append("authorityKeyIdentifier is required (also on roots: pkilint and path builders)")
    if {EXTENDED_KEY_USAGE, OCSP_NO_CHECK} & profile.extensions:
        problems.append("a CA profile carries no EKU and no ocspNoCheck")
    if not 1 <= profile.validity_months <= 12 * 30:
        problems.append("validity outside 1 month..30 years")
    if problems:
        raise DomainError(ErrorKind.CONFIGURATION, f"profile {profile.name}: " + "; ".join(problems))
    return profile


def leaf_profile(environment: Environment) -> LeafProfile:
    """The eHealth authentication certificate profile (§8.2): 36 months in production, 12 in acceptance."""
    months = 36 if environment is Environment.PRODUCTION else 12
    return validate_leaf_profile(
        LeafProfile(
            name=f"ehealth-auth-{environment.value}",
            environment=environment,
            validity_months=months,
            key_usage=frozenset({"digital_signature", "content_commitment", "key_encipherment"}),
            extended_key_usage=(
                ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,
                ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
            ),
            extensions=_LEAF_EXTENSIONS,
        )
    )


def ocsp_responder_profile(environment: Environment) -> LeafProfile:
    """Delegated OCSP responder (RFC 6960 §4.2.2.2): id-kp-OCSPSigning and id-pkix-ocsp-nocheck, 24 months."""
    return validate_leaf_profile(
        LeafProfile(
            name=f"ocsp-responder-{environment.value}",
            environment=environment,
            validity_months=24,
            key_usage=frozenset({"digital_signature"}),
            extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string,),
            # nocheck: relying parties do not check the responder's own status, so no CDP/OCSP URLs;
            # the caIssuers pointer is not needed either (the responder is issued by the CA being queried).
            extensions=frozenset(
                {
                    BASIC_CONSTRAINTS,
                    KEY_USAGE,
                    EXTENDED_KEY_USAGE,
                    SUBJECT_KEY_IDENTIFIER,
                    AUTHORITY_KEY_IDENTIFIER,
                    OCSP_NO_CHECK,
                }
            ),
        )
    )


def etkra_signer_profile(environment: Environment) -> LeafProfile:
    """The EtkRA certificate that signs ETKs as CMS: KU digitalSignature (critical), no EKU, 36 months."""
    return validate_leaf_profile(
        LeafProfile(
            name=f"etkra-signer-{environment.value}",
            environment=environment,
            validity_months=36,
            key_usage=frozenset({"digital_signature"}),
            extended_key_usage=(),
            extensions=_LEAF_EXTENSIONS - {EXTENDED_KEY_USAGE},
        )
    )


# The trusted-list signer is self-signed and pinned by clients: no CA to point at with CDP or AIA.
_PINNED_SIGNER_EXTENSIONS = _LEAF_EXTENSIONS - {CRL_DISTRIBUTION_POINTS, AUTHORITY_INFO_ACCESS}


def tsl_signer_profile(environment: Environment) -> LeafProfile:
    """Trusted-list signer: self-signed, CA=false, KU digitalSignature + nonRepudiation, EKU tslSigning,
    SKI, 36 months (trusted-list-guide §4.1)."""
    return validate_leaf_profile(
        LeafProfile(
            name=f"tsl-signer-{environment.value}",
            environment=environment,
            validity_months=36,
            key_usage=frozenset({"digital_signature", "content_commitment"}),
            extended_key_usage=(TSL_SIGNING_EKU,),
            extensions=_PINNED_SIGNER_EXTENSIONS,
        )
    )


def root_ca_profile(environment: Environment) -> CaProfile:
    return validate_ca_profile(
        CaProfile(
            name=f"root-ca-{environment.value}",
            environment=environment,
            validity_months=25 * 12,
            path_length=None,
            self_signed=True,
            # RFC 5280 lets a self-signed root omit the AKI, but pkilint reports its absence as an ERROR
            # and path builders use it: the root carries AKI = its own SKI.
            extensions=frozenset(
                {BASIC_CONSTRAINTS, KEY_USAGE, SUBJECT_KEY_IDENTIFIER, AUTHORITY_KEY_IDENTIFIER}
            ),
        )
    )


def issuing_ca_profile(environment: Environment) -> CaProfile:
    return validate_ca_profile(
        CaProfile(
            name=f"issuing-ca-{environment.value}",
            environment=environment,
            validity_months=10 * 12,
            path_length=0,
            self_signed=False,
            extensions=frozenset(
                {
                    BASIC_CONSTRAINTS,
                    KEY_USAGE,
                    SUBJECT_KEY_IDENTIFIER,
                    AUTHORITY_KEY_IDENTIFIER,
                    CRL_DISTRIBUTION_POINTS,
                    AUTHORITY_INFO_ACCESS,
                }
            ),
        )
    )


# -- validity -----------------------------------------------------------------------------------------


def add_months(at: datetime, months: int) -> datetime:
    """Add calendar months; a day that does not exist in the target month becomes its last day."""
    index = at.year * 12 + (at.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def normalise_time(at: datetime) -> datetime:
    """Aware UTC, whole seconds (certificates carry seconds; equality checks need the same precision)."""
    if at.tzinfo is None:
        raise DomainError(ErrorKind.BAD_REQUEST, "times must be timezone-aware (UTC)")
    return at.astimezone(UTC).replace(microsecond=0)


def max_not_after(not_before: datetime, validity_months: int) -> datetime:
    """The last second covered by a certificate of ``validity_months`` starting at ``not_before``."""
    return add_months(normalise_time(not_before), validity_months) - timedelta(seconds=1)


def validity_window(
    profile: LeafProfile | CaProfile, not_before: datetime, issuer_not_after: datetime
) -> tuple[datetime, datetime]:
    """``(notBefore, notAfter)`` for ``profile``, end inclusive; refuses to end after the issuer.

    Raises ``DomainError(CONFLICT)`` when the full period would outlive the issuing CA (Boulder refuses
    rather than truncating, so that every certificate of a profile has the same lifetime).
    """
    start = normalise_time(not_before)
    end = max_not_after(start, profile.validity_months)
    issuer_end = normalise_time(issuer_not_after)
    if end > issuer_end:
        raise DomainError(
            ErrorKind.CONFLICT,
            f"a {profile.validity_months}-month certificate from {start.isoformat()} would end "
            f"{end.isoformat()}, after its issuer ({issuer_end.isoformat()})",
        )
    return start, end
