"""Linting: pkilint in-process, and the fast pre-sign gate the issuer runs before every real signature.

Two layers:

* ``lint_certificate`` / ``lint_crl`` / ``lint_ocsp_response`` run pkilint's RFC 5280 / RFC 6960 (and CA/B
  Forum BR for CRLs) validators in-process. pkilint costs 7-9 ms per certificate and ~5 ms per OCSP
  response on the 2-core runner, too slow for the >= 100 issuances/s target, so the test suite runs it on
  every kind of object the issuer produces.
* ``check_*`` are the gate: equivalent profile checks written against the candidate's bytes (serial range,
  issuer name bytes, validity, the exact extension set of the profile, AKI/SKI, KU/EKU/BC, CA-only usages,
  CRL/OCSP structure and intervals). They cost microseconds; any finding blocks the signature.

``blocking`` keeps findings of severity WARNING or worse that are not in ``ALLOWLIST``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from ehealth_certs.pki import der
from ehealth_certs.pki.crl import (
    CA_CRL_REASONS,
    SUBSCRIBER_CRL_REASONS,
    RevokedEntry,
    read_tbs_header,
)
from ehealth_certs.pki.profiles import (
    AUTHORITY_INFO_ACCESS,
    AUTHORITY_KEY_IDENTIFIER,
    BASIC_CONSTRAINTS,
    CA_ONLY_KEY_USAGES,
    CRL_DISTRIBUTION_POINTS,
    EXTENDED_KEY_USAGE,
    KEY_USAGE,
    KEY_USAGE_NAMES,
    OCSP_NO_CHECK,
    SUBJECT_KEY_IDENTIFIER,
    CaProfile,
    LeafProfile,
    max_not_after,
)

SEVERITIES = ("FATAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")
BLOCKING_SEVERITIES = frozenset({"FATAL", "ERROR", "WARNING"})

# Reviewed findings at WARNING or above that do not block. Each entry: pkilint code -> why it is accepted.
ALLOWLIST: dict[str, str] = {
    # The eHealth production profile (ehealth-reference.md §8.2) has no certificatePolicies and the real
    # certificate has none; pkilint only warns because PKIX recommends policies, the profile forbids them.
    "pkix.certificate_policies_extension_absent": "eHealth auth certificates carry no policies (§8.2)",
}

MAX_CERTIFICATE_DER = 8 * 1024
MAX_SERIAL_OCTETS = 20
CRL_MAX_VALIDITY = timedelta(days=10)  # BR §4.9.7 for subscriber-certificate CRLs
ARL_MAX_VALIDITY = timedelta(days=365)  # BR §4.9.7 for CA-certificate CRLs (12 months)
OCSP_MIN_VALIDITY = timedelta(hours=8)  # BR §4.9.10
OCSP_MAX_VALIDITY = timedelta(days=10)


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    path: str


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """Findings that stop a signature: WARNING or worse and not in the reviewed ``ALLOWLIST``."""
    return [f for f in findings if f.severity in BLOCKING_SEVERITIES and f.code not in ALLOWLIST]


def _error(code: str, path: str) -> Finding:
    return Finding("ERROR", f"ehcerts.{code}", path)


# -- pkilint ---------------------------------------------------------------------------------------------


@cache
def _pkilint_validators() -> dict[str, Any]:
    # Imported lazily: pkilint's import builds large ASN.1 tables (~1 s) that the server may never need.
    from pkilint import loader, pkix
    from pkilint.cabf import cabf_crl
    from pkilint.pkix import algorithm, certificate, crl, extension, key, name, ocsp
    from pkilint.pkix.certificate import certificate_key
    from pkilint.validation import ValidatorContainer

    decoding = certificate.create_decoding_validators(
        name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
    )
    cert_validator = certificate.create_pkix_certificate_validator_container(
        decoding,
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )
    # Same composition as pkilint/bin/lint_pkix_signer_signee_cert_chain.py.
    chain_decoding = ValidatorContainer(
        validators=[
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
            pkix.create_signature_algorithm_identifier_decoder(
                algorithm.SIGNATURE_ALGORITHM_IDENTIFIER_MAPPINGS, path="certificate.tbsCertificate.signature"
            ),
            certificate.create_spki_decoder(
                key.SUBJECT_PUBLIC_KEY_ALGORITHM_IDENTIFIER_MAPPINGS,
                key.SUBJECT_KEY_PARAMETER_ALGORITHM_IDENTIFIER_MAPPINGS,
            ),
        ],
        path="certificate",
    )
    from pkilint import document
    from pkilint.pkix.certificate import certificate_extension
    from pyasn1_alt_modules import rfc5280

    chain_issuer = ValidatorContainer(
        validators=[
            name.IssuerSubjectNameBinaryEqualValidator(
                path="certificate.tbsCertificate.subject",
                subject_document_issuer_dn_path="subject:certificate.tbsCertificate.issuer",
            ),
            extension.IssuerSubjectKeyIdentifierBinaryEqualValidator(
                subject_auth_key_id_retriever=(
                    lambda n: document.get_document_by_name(n, "subject").get_extension_by_oid(
                        rfc5280.id_ce_authorityKeyIdentifier
                    )
                )
            ),
            certificate_extension.IssuerSubjectPolicyChainValidator(),
        ]
    )
    chain_subject = ValidatorContainer(
        validators=[
            certificate_key.SubjectSignatureVerificationValidator(
                tbs_node_retriever=lambda n: n.navigate("^.tbsCertificate"), path="certificate.signature"
            )
        ]
    )

    def crl_validator(crl_type: Any) -> Any:
        return crl.create_pkix_crl_validator_container(
            [
                pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
                pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
            ],
            [
                crl.create_issuer_validator_container([]),
                crl.create_validity_validator_container(
                    [cabf_crl.create_validity_period_validator(crl_type)]
                ),
                crl.create_extensions_validator_container([]),
                cabf_crl.CabfCrlReasonCodeAllowlistValidator(crl_type),
            ],
        )

    ocsp_validator = ocsp.create_pkix_ocsp_response_validator_container(
        [
            ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )
    return {
        "loader": loader,
        "cert": cert_validator,
        "chain": (chain_decoding, chain_issuer, chain_subject),
        "crl": crl_validator(crl.CertificateRevocationListType.CRL),
        "arl": crl_validator(crl.CertificateRevocationListType.ARL),
        "ocsp": ocsp_validator,
    }


def _findings(results: Iterable[Any]) -> list[Finding]:
    return [
        Finding(str(fd.finding.severity), fd.finding.code, str(res.node.path))
        for res in results
        for fd in res.finding_descriptions
    ]


def _load_failure(kind: str, exc: Exception) -> list[Finding]:
    return [Finding("FATAL", f"ehcerts.{kind}_undecodable", type(exc).__name__)]


def lint_certificate(der_bytes: bytes, issuer_der: bytes | None = None) -> list[Finding]:
    """pkilint ``lint_pkix_cert``; with ``issuer_der`` also the signer/signee chain lint (name bytes, AKI/SKI,
    policy chain, signature)."""
    v = _pkilint_validators()
    loader = v["loader"]
    try:
        doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der_bytes, "certificate")
    except Exception as exc:  # pyasn1 raises its own error types on bad DER, not only ValueError
        return _load_failure("certificate", exc)
    findings = _findings(v["cert"].validate(doc.root))
    if issuer_der is not None:
        decoding, issuer_container, subject_container = v["chain"]
        collection: dict[str, Any] = {}
        try:
            issuer = loader.RFC5280CertificateDocumentLoader().load_der_document(
                issuer_der, "issuer.der", "issuer", collection
            )
            collection["issuer"] = issuer
            subject = loader.RFC5280CertificateDocumentLoader().load_der_document(
                der_bytes, "subject.der", "subject", collection
            )
            collection["subject"] = subject
        except Exception as exc:
            return [*findings, *_load_failure("chain", exc)]
        results = decoding.validate(issuer.root) + decoding.validate(subject.root)
        results += issuer_container.validate(issuer.root) + subject_container.validate(subject.root)
        findings += _findings(results)
    return findings


def lint_crl(der_bytes: bytes, *, arl: bool = False) -> list[Finding]:
    """pkilint ``lint_crl -t CRL -p BR`` (``arl=True``: ``-t ARL``)."""
    v = _pkilint_validators()
    try:
        doc = v["loader"].RFC5280CertificateListDocumentLoader().load_der_document(der_bytes, "crl")
    except Exception as exc:
        return _load_failure("crl", exc)
    return _findings(v["arl" if arl else "crl"].validate(doc.root))


def lint_ocsp_response(der_bytes: bytes) -> list[Finding]:
    """pkilint ``lint_ocsp_response`` (RFC 6960 only: the BR timing rules are enforced by ``check_ocsp``)."""
    v = _pkilint_validators()
    try:
        doc = v["loader"].RFC6960OCSPResponseDocumentLoader().load_der_document(der_bytes, "ocsp")
    except Exception as exc:
        return _load_failure("ocsp", exc)
    return _findings(v["ocsp"].validate(doc.root))


# -- the pre-sign gate: certificates ---------------------------------------------------------------------

_PROFILE_EXTENSION_OIDS = {
    BASIC_CONSTRAINTS: ExtensionOID.BASIC_CONSTRAINTS,
    KEY_USAGE: ExtensionOID.KEY_USAGE,
    EXTENDED_KEY_USAGE: ExtensionOID.EXTENDED_KEY_USAGE,
    SUBJECT_KEY_IDENTIFIER: ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    AUTHORITY_KEY_IDENTIFIER: ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    CRL_DISTRIBUTION_POINTS: ExtensionOID.CRL_DISTRIBUTION_POINTS,
    AUTHORITY_INFO_ACCESS: ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    OCSP_NO_CHECK: ExtensionOID.OCSP_NO_CHECK,
}


def check_serial(serial: int) -> list[Finding]:
    """RFC 5280 §4.1.2.2 and BR: positive, at most 20 octets, below 2^159."""
    path = "certificate.tbsCertificate.serialNumber"
    if serial <= 0:
        return [_error("serial_not_positive", path)]
    if len(der.integer_content(serial)) > MAX_SERIAL_OCTETS:
        return [_error("serial_longer_than_20_octets", path)]
    if serial >= 2**159:
        return [_error("serial_not_below_2_159", path)]
    return []


def _key_usage_names(value: x509.KeyUsage) -> frozenset[str]:
    names = set()
    for attr in KEY_USAGE_NAMES:
        if attr in ("encipher_only", "decipher_only") and not value.key_agreement:
            continue
        if getattr(value, attr):
            names.add(attr)
    return frozenset(names)


def check_certificate(
    candidate: x509.Certificate,
    candidate_der: bytes,
    *,
    profile: LeafProfile | CaProfile,
    issuer_subject_der: bytes,
    issuer_key_id: bytes | None,
    issuer_not_after: datetime | None,
) -> list[Finding]:
    """The gate for one to-be-signed certificate (built under a throw-away key, same issuer name bytes).

    Checks the profile-independent rules first (so that a broken profile is still caught), then that the
    certificate carries exactly what ``profile`` says.
    """
    tbs = "certificate.tbsCertificate"
    findings = check_serial(candidate.serial_number)
    fields = der.tbs_certificate_fields(candidate_der)
    if fields["issuer"] != issuer_subject_der:
        findings.append(_error("issuer_name_bytes_differ_from_ca_subject", f"{tbs}.issuer"))
    if len(candidate_der) > MAX_CERTIFICATE_DER:
        findings.append(_error("certificate_too_large", "certificate"))
    if candidate.version is not x509.Version.v3:
        findings.append(_error("not_v3", f"{tbs}.version"))

    not_before = candidate.not_valid_before_utc
    not_after = candidate.not_valid_after_utc
    if not_after <= not_before:
        findings.append(_error("validity_not_after_before_not_before", f"{tbs}.validity"))
    if not_after > max_not_after(not_before, profile.validity_months):
        findings.append(_error("validity_longer_than_profile", f"{tbs}.validity.notAfter"))
    if issuer_not_after is not None and not_after > issuer_not_after:
        findings.append(_error("validity_beyond_issuer", f"{tbs}.validity.notAfter"))

    ext_path = f"{tbs}.extensions"
    present = {ext.oid for ext in candidate.extensions}
    wanted = {_PROFILE_EXTENSION_OIDS[name] for name in profile.extensions if name in _PROFILE_EXTENSION_OIDS}
    for oid in present - wanted:
        findings.append(_error(f"extension_not_in_profile.{oid.dotted_string}", ext_path))
    for oid in wanted - present:
        findings.append(_error(f"extension_missing.{oid.dotted_string}", ext_path))

    is_ca = isinstance(profile, CaProfile)

    try:
        aki = candidate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        if issuer_key_id is not None and aki.key_identifier != issuer_key_id:
            findings.append(_error("authority_key_identifier_differs_from_issuer_ski", ext_path))
        if aki.authority_cert_issuer is not None or aki.authority_cert_serial_number is not None:
            findings.append(_error("authority_key_identifier_not_key_id_only", ext_path))
    except x509.ExtensionNotFound:
        findings.append(_error("authority_key_identifier_missing", ext_path))

    try:
        ski = candidate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        method_1 = hashlib.sha1(fields["subject_public_key"]).digest()  # noqa: S324 - RFC 5280 method 1
        if ski.digest != method_1:
            findings.append(_error("subject_key_identifier_not_public_key_identifier", ext_path))
    except x509.ExtensionNotFound:
        findings.append(_error("subject_key_identifier_missing", ext_path))

    try:
        bc_ext = candidate.extensions.get_extension_for_class(x509.BasicConstraints)
        if not bc_ext.critical:
            findings.append(_error("basic_constraints_not_critical", ext_path))
        if bc_ext.value.ca is not is_ca:
            findings.append(_error("basic_constraints_ca_flag_wrong", ext_path))
        if isinstance(profile, CaProfile) and bc_ext.value.path_length != profile.path_length:
            findings.append(_error("basic_constraints_path_length_wrong", ext_path))
    except x509.ExtensionNotFound:
        findings.append(_error("basic_constraints_missing", ext_path))

    try:
        ku_ext = candidate.extensions.get_extension_for_class(x509.KeyUsage)
        usages = _key_usage_names(ku_ext.value)
        if not ku_ext.critical:
            findings.append(_error("key_usage_not_critical", ext_path))
        if is_ca:
            if not {"key_cert_sign", "crl_sign"} <= usages:
                findings.append(_error("ca_key_usage_lacks_cert_or_crl_sign", ext_path))
        else:
            if usages & CA_ONLY_KEY_USAGES:
                findings.append(_error("end_entity_has_ca_key_usage", ext_path))
            if usages & {"key_encipherment", "data_encipherment"} and isinstance(
                candidate.public_key(), ec.EllipticCurvePublicKey
            ):
                findings.append(_error("key_usage_encipherment_with_ec_key", ext_path))
            if isinstance(profile, LeafProfile) and usages != profile.key_usage:
                findings.append(_error("key_usage_differs_from_profile", ext_path))
            if isinstance(profile, LeafProfile) and ku_ext.critical != profile.key_usage_critical:
                findings.append(_error("key_usage_criticality_differs_from_profile", ext_path))
    except x509.ExtensionNotFound:
        findings.append(_error("key_usage_missing", ext_path))

    try:
        eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        eku_oids = tuple(o.dotted_string for o in eku.value)
        if is_ca:
            findings.append(_error("ca_has_extended_key_usage", ext_path))
        elif isinstance(profile, LeafProfile) and eku_oids != profile.extended_key_usage:
            findings.append(_error("extended_key_usage_differs_from_profile", ext_path))
        if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string in eku_oids:
            findings.append(_error("extended_key_usage_any", ext_path))
    except x509.ExtensionNotFound:
        pass
    return findings


# -- the pre-sign gate: CRLs -----------------------------------------------------------------------------


def check_crl(
    tbs: bytes,
    *,
    entries: Sequence[RevokedEntry],
    this_update: datetime,
    next_update: datetime,
    number: int,
    issuer_subject_der: bytes,
    issuer_key_id: bytes,
    arl: bool,
) -> list[Finding]:
    """The gate for one to-be-signed CRL: header read back from ``tbs``, entries checked from the input."""
    findings: list[Finding] = []
    base = "certificateList.tbsCertList"
    try:
        header = read_tbs_header(tbs)
    except (ValueError, IndexError):
        return [_error("crl_tbs_undecodable", base)]
    if header.version != 1:
        findings.append(_error("crl_not_v2", f"{base}.version"))
    if header.issuer != issuer_subject_der:
        findings.append(_error("issuer_name_bytes_differ_from_ca_subject", f"{base}.issuer"))
    if header.next_update is None:
        findings.append(_error("crl_next_update_missing", f"{base}.nextUpdate"))
    if next_update <= this_update:
        findings.append(_error("crl_next_update_not_after_this_update", f"{base}.nextUpdate"))
    if next_update - this_update > (ARL_MAX_VALIDITY if arl else CRL_MAX_VALIDITY):
        findings.append(_error("crl_validity_period_too_long", f"{base}.nextUpdate"))
    if header.revoked_present and header.revoked_empty:
        findings.append(_error("crl_revoked_certificates_empty", f"{base}.revokedCertificates"))
    if header.revoked_present != bool(entries):
        findings.append(_error("crl_revoked_certificates_mismatch", f"{base}.revokedCertificates"))
    ext_path = f"{base}.crlExtensions"
    aki = header.extensions.get("2.5.29.35")
    if aki is None:
        findings.append(_error("crl_authority_key_identifier_missing", ext_path))
    elif aki != der.sequence(der.tlv(0x80, issuer_key_id)):
        findings.append(_error("crl_authority_key_identifier_differs_from_issuer_ski", ext_path))
    if "2.5.29.20" not in header.extensions:
        findings.append(_error("crl_number_missing", ext_path))
    if not 0 <= number < 2**159:
        findings.append(_error("crl_number_out_of_range", ext_path))
    if set(header.extensions) - {"2.5.29.35", "2.5.29.20"}:
        findings.append(_error("crl_unexpected_extension", ext_path))

    allowed = CA_CRL_REASONS if arl else SUBSCRIBER_CRL_REASONS
    seen: set[int] = set()
    entry_path = f"{base}.revokedCertificates"
    bad_serials = bad_reasons = future = 0
    for entry in entries:
        serial = entry.serial
        if serial <= 0 or serial >= 2**159:
            bad_serials += 1
        seen.add(serial)
        if entry.reason is not None and entry.reason not in allowed:
            bad_reasons += 1
        if entry.revoked_at > this_update:
            future += 1
    if len(seen) != len(entries):
        findings.append(_error("crl_duplicate_serial", entry_path))
    if bad_serials:
        findings.append(_error("crl_entry_serial_out_of_range", entry_path))
    if bad_reasons:
        findings.append(_error("crl_entry_reason_not_allowed", entry_path))
    if future:
        findings.append(_error("crl_entry_revoked_after_this_update", entry_path))
    return findings


# -- the pre-sign gate: OCSP -----------------------------------------------------------------------------


def check_ocsp(
    *,
    responder_certificate: x509.Certificate,
    issuer_certificate: x509.Certificate,
    status: str,
    revoked_at: datetime | None,
    this_update: datetime,
    next_update: datetime,
    nonce: bytes | None,
) -> list[Finding]:
    """The gate for one to-be-signed OCSP response (BR §4.9.10 timing; delegated responder rules)."""
    base = "ocspResponse.responseBytes.response.tbsResponseData"
    findings: list[Finding] = []
    if status not in ("good", "revoked", "unknown"):
        findings.append(_error("ocsp_unknown_status", f"{base}.responses.certStatus"))
    if status == "revoked" and (revoked_at is None or revoked_at > this_update):
        findings.append(_error("ocsp_revocation_time_missing_or_future", f"{base}.responses.certStatus"))
    interval = next_update - this_update
    if not OCSP_MIN_VALIDITY <= interval <= OCSP_MAX_VALIDITY:
        findings.append(_error("ocsp_validity_interval_out_of_range", f"{base}.responses.nextUpdate"))
    if nonce is not None and not 1 <= len(nonce) <= 32:
        findings.append(_error("ocsp_nonce_length", f"{base}.responseExtensions"))
    findings.extend(_check_delegated_responder(responder_certificate, issuer_certificate))
    return findings


@cache
def _check_delegated_responder(responder: x509.Certificate, issuer: x509.Certificate) -> tuple[Finding, ...]:
    path = "ocspResponse.responseBytes.response.certs"
    findings: list[Finding] = []
    try:
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            findings.append(_error("ocsp_responder_lacks_ocsp_signing", path))
    except x509.ExtensionNotFound:
        findings.append(_error("ocsp_responder_lacks_ocsp_signing", path))
    try:
        responder.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        findings.append(_error("ocsp_responder_not_issued_by_ca", path))
    return tuple(findings)
