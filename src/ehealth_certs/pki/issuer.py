"""THE signing place (ARCHITECTURE rule 1): certificates, CRLs and OCSP responses get their signature here.

A ``Signer`` never reveals its key, so the to-be-signed bytes are produced without it:

* certificates: ``cryptography``'s builder signs a candidate with a cached throw-away key of the same type
  (RSA or EC) and signature algorithm, under the real issuer's name and key identifier. The candidate goes
  through the pre-sign gate (``pki/lint.py``); its TBS bytes are then signed by the real signer and the
  certificate is reassembled (``TBS || algorithm || BIT STRING``) and verified against the CA.
* CRLs and OCSP responses: the TBS is written directly in DER (``pki/crl.py``, ``pki/ocsp.py``), gated,
  signed, reassembled and verified.

Certificate issuance is two steps so the caller can commit its intent between them (quality-bar §3):
``prepare_leaf`` (build + lint, no signature; store ``tbs_der``) then ``sign_prepared``. A gate failure raises
``DomainError(LINT_FAILURE)`` with ``params["findings"]`` and the real signer is never called.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import crl as crl_builder
from ehealth_certs.pki import der, lint
from ehealth_certs.pki import ocsp as ocsp_builder
from ehealth_certs.pki.crl import RevokedEntry
from ehealth_certs.pki.profiles import (
    AUTHORITY_INFO_ACCESS,
    AUTHORITY_KEY_IDENTIFIER,
    BASIC_CONSTRAINTS,
    CRL_DISTRIBUTION_POINTS,
    EXTENDED_KEY_USAGE,
    KEY_USAGE,
    KEY_USAGE_NAMES,
    OCSP_NO_CHECK,
    SUBJECT_KEY_IDENTIFIER,
    CaProfile,
    LeafProfile,
    normalise_time,
)
from ehealth_certs.pki.signing import PublicKey, SignatureScheme, Signer

__all__ = [
    "CaKey",
    "PreparedCertificate",
    "RevokedEntry",
    "prepare_ca",
    "prepare_leaf",
    "prepare_root",
    "random_serial",
    "sign_crl",
    "sign_ocsp_response",
    "sign_prepared",
    "sign_root",
]

_ALGORITHMS: dict[SignatureScheme, bytes] = {
    SignatureScheme.RSA_PKCS1_SHA256: der.sequence(der.oid("1.2.840.113549.1.1.11"), der.null()),
    SignatureScheme.ECDSA_SHA256: der.sequence(der.oid("1.2.840.10045.4.3.2")),
}


@dataclass(frozen=True)
class CaKey:
    """A certificate and the signer holding its private key (CA, OCSP responder, EtkRA or TSL signer)."""

    certificate: x509.Certificate
    signer: Signer


@dataclass(frozen=True)
class PreparedCertificate:
    """A linted, not yet signed certificate. ``candidate_der`` is the throw-away-signed lint candidate."""

    tbs_der: bytes
    serial: int
    not_before: datetime
    not_after: datetime
    candidate_der: bytes


def random_serial() -> int:
    """159 bits from the OS CSPRNG: positive, < 2^159, at most 20 DER octets (quality-bar §1.1)."""
    while True:
        serial = int.from_bytes(secrets.token_bytes(20), "big") >> 1
        if serial:
            return serial


# -- helpers --------------------------------------------------------------------------------------------


def _algorithm(signer: Signer) -> bytes:
    try:
        return _ALGORITHMS[signer.scheme]
    except KeyError:
        raise DomainError(
            ErrorKind.CONFIGURATION,
            f"signature scheme {signer.scheme} is not supported by the issuer "
            "(sha256WithRSAEncryption, ecdsa-with-SHA256)",
        ) from None


@cache
def _throwaway_key(scheme: SignatureScheme) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    # Only the TBS bytes of the candidate are kept; the key type decides the AlgorithmIdentifier written
    # inside the TBS, so it must match the real signer's. Its signature is thrown away, so its size is
    # irrelevant to security: RSA-1024 makes the candidate cost ~0.2 ms instead of ~1.8 ms for RSA-2048.
    if scheme is SignatureScheme.ECDSA_SHA256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - never a real key


@dataclass(frozen=True)
class _IssuerFacts:
    subject_der: bytes
    key_id: bytes | None
    not_after: datetime
    self_signed: bool
    certificate_der: bytes


@lru_cache(maxsize=64)
def _issuer_facts(certificate: x509.Certificate) -> _IssuerFacts:
    cert_der = certificate.public_bytes(serialization.Encoding.DER)
    fields = der.tbs_certificate_fields(cert_der)
    try:
        key_id: bytes | None = certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        key_id = None
    return _IssuerFacts(
        subject_der=fields["subject"],
        key_id=key_id,
        not_after=certificate.not_valid_after_utc,
        self_signed=fields["subject"] == fields["issuer"],
        certificate_der=cert_der,
    )


def _lint_failure(what: str, findings: Sequence[lint.Finding]) -> DomainError:
    codes = ", ".join(f.code for f in findings)
    return DomainError(
        ErrorKind.LINT_FAILURE, f"{what} failed the pre-sign lint: {codes}", findings=tuple(findings)
    )


def _verify(public_key: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _check_url(url: str, what: str) -> str:
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise DomainError(ErrorKind.CONFIGURATION, f"{what} must be an http(s) URL without spaces: {url!r}")
    return url


def _extensions(
    *,
    profile: LeafProfile | CaProfile,
    public_key: PublicKey,
    issuer_key_id: bytes | None,
    crl_url: str | None,
    ocsp_url: str | None,
    ca_issuers_url: str | None,
) -> list[tuple[x509.ExtensionType, bool]]:
    """The profile's extensions, in a fixed order; nothing outside ``profile.extensions`` is ever added."""
    wanted = profile.extensions
    is_ca = isinstance(profile, CaProfile)
    out: list[tuple[x509.ExtensionType, bool]] = []
    if BASIC_CONSTRAINTS in wanted:
        path_length = profile.path_length if isinstance(profile, CaProfile) else None
        out.append((x509.BasicConstraints(ca=is_ca, path_length=path_length), True))
    if KEY_USAGE in wanted:
        usages = {"key_cert_sign", "crl_sign"} if isinstance(profile, CaProfile) else set(profile.key_usage)
        flags = {name: name in usages for name in KEY_USAGE_NAMES}
        critical = True if isinstance(profile, CaProfile) else profile.key_usage_critical
        out.append((x509.KeyUsage(**flags), critical))
    if EXTENDED_KEY_USAGE in wanted and isinstance(profile, LeafProfile) and profile.extended_key_usage:
        ekus = [x509.ObjectIdentifier(dotted) for dotted in profile.extended_key_usage]
        out.append((x509.ExtendedKeyUsage(ekus), profile.extended_key_usage_critical))
    if SUBJECT_KEY_IDENTIFIER in wanted:
        out.append((x509.SubjectKeyIdentifier.from_public_key(public_key), False))
    if AUTHORITY_KEY_IDENTIFIER in wanted and issuer_key_id is not None:
        out.append((x509.AuthorityKeyIdentifier(issuer_key_id, None, None), False))
    if CRL_DISTRIBUTION_POINTS in wanted and crl_url:
        uri = x509.UniformResourceIdentifier(_check_url(crl_url, "crl_url"))
        out.append((x509.CRLDistributionPoints([x509.DistributionPoint([uri], None, None, None)]), False))
    if AUTHORITY_INFO_ACCESS in wanted:
        access = []
        if ocsp_url:
            uri = x509.UniformResourceIdentifier(_check_url(ocsp_url, "ocsp_url"))
            access.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, uri))
        if ca_issuers_url:
            uri = x509.UniformResourceIdentifier(_check_url(ca_issuers_url, "ca_issuers_url"))
            access.append(x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, uri))
        if access:
            out.append((x509.AuthorityInformationAccess(access), False))
    if OCSP_NO_CHECK in wanted:
        out.append((x509.OCSPNoCheck(), False))
    return out


def _prepare(
    *,
    scheme: SignatureScheme,
    issuer_name: x509.Name,
    issuer_subject_der: bytes,
    issuer_key_id: bytes | None,
    issuer_not_after: datetime | None,
    profile: LeafProfile | CaProfile,
    subject: x509.Name,
    public_key: PublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    crl_url: str | None,
    ocsp_url: str | None,
    ca_issuers_url: str | None,
) -> PreparedCertificate:
    findings = lint.check_serial(serial)
    if findings:
        raise _lint_failure(f"certificate serial {serial:#x}", findings)
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise DomainError(ErrorKind.BAD_CSR, "the subject public key must be RSA or EC")
    start, end = normalise_time(not_before), normalise_time(not_after)
    builder = (
        x509.CertificateBuilder()
        .issuer_name(issuer_name)
        .subject_name(subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
    )
    for extension, critical in _extensions(
        profile=profile,
        public_key=public_key,
        issuer_key_id=issuer_key_id,
        crl_url=crl_url,
        ocsp_url=ocsp_url,
        ca_issuers_url=ca_issuers_url,
    ):
        builder = builder.add_extension(extension, critical)
    try:
        candidate = builder.sign(_throwaway_key(scheme), hashes.SHA256())
    except ValueError as exc:
        raise DomainError(
            ErrorKind.LINT_FAILURE, f"the certificate builder refused the candidate: {exc}"
        ) from exc
    candidate_der = candidate.public_bytes(serialization.Encoding.DER)
    findings = lint.blocking(
        lint.check_certificate(
            candidate,
            candidate_der,
            profile=profile,
            issuer_subject_der=issuer_subject_der,
            issuer_key_id=issuer_key_id,
            issuer_not_after=issuer_not_after,
        )
    )
    if findings:
        raise _lint_failure(f"certificate serial {serial:#x} ({profile.name})", findings)
    return PreparedCertificate(
        tbs_der=candidate.tbs_certificate_bytes,
        serial=serial,
        not_before=start,
        not_after=end,
        candidate_der=candidate_der,
    )


def _check_prepared_matches(prepared: PreparedCertificate, algorithm: bytes) -> None:
    tbs, candidate_algorithm, _ = der.split_signed(prepared.candidate_der)
    if tbs != prepared.tbs_der or candidate_algorithm != algorithm:
        raise DomainError(ErrorKind.CONFLICT, "the prepared certificate does not belong to this signer")


# -- certificates ---------------------------------------------------------------------------------------


def prepare_leaf(
    *,
    ca: CaKey,
    profile: LeafProfile,
    subject: x509.Name,
    public_key: PublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    crl_url: str,
    ocsp_url: str,
    ca_issuers_url: str,
) -> PreparedCertificate:
    """Build and lint an end-entity certificate under ``ca`` without signing it.

    The profile decides which extensions appear (URLs of extensions outside the profile are ignored).
    Raises ``DomainError(LINT_FAILURE)`` (``params["findings"]``) on any blocking finding.
    """
    facts = _issuer_facts(ca.certificate)
    _algorithm(ca.signer)
    return _prepare(
        scheme=ca.signer.scheme,
        issuer_name=ca.certificate.subject,
        issuer_subject_der=facts.subject_der,
        issuer_key_id=facts.key_id,
        issuer_not_after=facts.not_after,
        profile=profile,
        subject=subject,
        public_key=public_key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        crl_url=crl_url,
        ocsp_url=ocsp_url,
        ca_issuers_url=ca_issuers_url,
    )


def prepare_ca(
    *,
    ca: CaKey,
    profile: CaProfile,
    subject: x509.Name,
    public_key: PublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    crl_url: str | None,
    ca_issuers_url: str | None,
) -> PreparedCertificate:
    """Build and lint a subordinate CA certificate under ``ca`` (the root) without signing it."""
    facts = _issuer_facts(ca.certificate)
    _algorithm(ca.signer)
    return _prepare(
        scheme=ca.signer.scheme,
        issuer_name=ca.certificate.subject,
        issuer_subject_der=facts.subject_der,
        issuer_key_id=facts.key_id,
        issuer_not_after=facts.not_after,
        profile=profile,
        subject=subject,
        public_key=public_key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        crl_url=crl_url,
        ocsp_url=None,
        ca_issuers_url=ca_issuers_url,
    )


def _prepare_self_signed(
    signer: Signer,
    profile: LeafProfile | CaProfile,
    subject: x509.Name,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> PreparedCertificate:
    _algorithm(signer)
    return _prepare(
        scheme=signer.scheme,
        issuer_name=subject,
        issuer_subject_der=subject.public_bytes(),
        issuer_key_id=x509.SubjectKeyIdentifier.from_public_key(signer.public_key).digest,
        issuer_not_after=None,
        profile=profile,
        subject=subject,
        public_key=signer.public_key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        crl_url=None,
        ocsp_url=None,
        ca_issuers_url=None,
    )


def prepare_root(
    *,
    signer: Signer,
    profile: CaProfile,
    subject: x509.Name,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> PreparedCertificate:
    """Build and lint a self-signed root (issuer = subject, AKI = its own SKI) without signing it."""
    return _prepare_self_signed(signer, profile, subject, serial, not_before, not_after)


def prepare_self_signed(
    *,
    signer: Signer,
    profile: LeafProfile,
    subject: x509.Name,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> PreparedCertificate:
    """Build and lint a self-signed end-entity certificate (the trusted-list signer: clients pin it
    directly, as they pin the Belgian scheme operator's self-signed signer). Sign with ``sign_root``."""
    return _prepare_self_signed(signer, profile, subject, serial, not_before, not_after)


def _sign_certificate(signer: Signer, prepared: PreparedCertificate) -> x509.Certificate:
    algorithm = _algorithm(signer)
    _check_prepared_matches(prepared, algorithm)
    signature = signer.sign(prepared.tbs_der)
    return x509.load_der_x509_certificate(der.assemble_signed(prepared.tbs_der, algorithm, signature))


def sign_prepared(ca: CaKey, prepared: PreparedCertificate) -> x509.Certificate:
    """Sign a prepared certificate with ``ca``'s signer and verify the result against the CA certificate."""
    facts = _issuer_facts(ca.certificate)
    if der.tbs_certificate_fields(prepared.candidate_der)["issuer"] != facts.subject_der:
        raise DomainError(ErrorKind.CONFLICT, "the prepared certificate names another issuer")
    certificate = _sign_certificate(ca.signer, prepared)
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature) as exc:
        # A signer whose key does not match its certificate, or a faulty HSM signature: never hand it out.
        raise DomainError(ErrorKind.INTERNAL, "the new certificate does not verify under its CA") from exc
    return certificate


def sign_root(signer: Signer, prepared: PreparedCertificate) -> x509.Certificate:
    """Self-sign a prepared root certificate and verify its signature."""
    certificate = _sign_certificate(signer, prepared)
    if not _verify(signer.public_key, certificate.signature, certificate.tbs_certificate_bytes):
        raise DomainError(ErrorKind.INTERNAL, "the root certificate does not verify under its own key")
    return certificate


# -- CRLs -----------------------------------------------------------------------------------------------


def sign_crl(
    ca: CaKey, *, number: int, this_update: datetime, next_update: datetime, entries: Sequence[RevokedEntry]
) -> bytes:
    """Build, gate, sign and verify a DER CRL of ``ca``.

    A self-signed ``ca`` (root) produces an ARL (nextUpdate up to 12 months, cACompromise allowed); any
    other CA a subscriber CRL (nextUpdate at most 10 days after thisUpdate). ``number`` must be strictly
    greater than the previous one: that is the caller's job (it owns the sequence).
    """
    facts = _issuer_facts(ca.certificate)
    algorithm = _algorithm(ca.signer)
    if facts.key_id is None:
        raise _lint_failure(
            "CRL", [lint.Finding("ERROR", "ehcerts.crl_authority_key_identifier_missing", "")]
        )
    start, end = normalise_time(this_update), normalise_time(next_update)
    tbs = crl_builder.build_tbs_crl(
        signature_algorithm=algorithm,
        issuer_name=facts.subject_der,
        authority_key_id=facts.key_id,
        number=number,
        this_update=start,
        next_update=end,
        entries=entries,
    )
    findings = lint.blocking(
        lint.check_crl(
            tbs,
            entries=entries,
            this_update=start,
            next_update=end,
            number=number,
            issuer_subject_der=facts.subject_der,
            issuer_key_id=facts.key_id,
            arl=facts.self_signed,
        )
    )
    if findings:
        raise _lint_failure(f"CRL number {number}", findings)
    signature = ca.signer.sign(tbs)
    if not _verify(ca.certificate.public_key(), signature, tbs):  # type: ignore[arg-type]
        raise DomainError(ErrorKind.INTERNAL, "the CRL signature does not verify under the CA certificate")
    return der.assemble_signed(tbs, algorithm, signature)


# -- OCSP -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _issuer_hashes(issuer_certificate: x509.Certificate, hash_algorithm: str) -> tuple[bytes, bytes]:
    return ocsp_builder.issuer_hashes(issuer_certificate, hash_algorithm)


@lru_cache(maxsize=64)
def _responder_key_id(responder_certificate: x509.Certificate) -> bytes:
    return ocsp_builder.responder_key_hash(responder_certificate)


def sign_ocsp_response(
    responder: CaKey,
    *,
    issuer_certificate: x509.Certificate,
    serial: int,
    status: str,
    revoked_at: datetime | None,
    reason: x509.ReasonFlags | None,
    this_update: datetime,
    next_update: datetime,
    hash_algorithm: str = "sha1",
    nonce: bytes | None = None,
    produced_at: datetime | None = None,
) -> bytes:
    """A successful OCSP response for one serial of ``issuer_certificate``, signed by its delegated responder.

    ``status``: "good" | "revoked" (``revoked_at`` required, ``reason`` optional) | "unknown".
    ``produced_at`` defaults to ``this_update``. The gate enforces 8 h <= nextUpdate - thisUpdate <= 10 days
    and that ``responder`` is an OCSP-signing certificate issued directly by ``issuer_certificate``.
    """
    algorithm = _algorithm(responder.signer)
    start, end = normalise_time(this_update), normalise_time(next_update)
    revoked = normalise_time(revoked_at) if revoked_at is not None else None
    findings = lint.blocking(
        lint.check_ocsp(
            responder_certificate=responder.certificate,
            issuer_certificate=issuer_certificate,
            status=status,
            revoked_at=revoked,
            this_update=start,
            next_update=end,
            nonce=nonce,
        )
    )
    if findings:
        raise _lint_failure(f"OCSP response for serial {serial:#x}", findings)
    name_hash, key_hash = _issuer_hashes(issuer_certificate, hash_algorithm)
    response_data = ocsp_builder.build_response_data(
        responder_key_id=_responder_key_id(responder.certificate),
        produced_at=normalise_time(produced_at) if produced_at is not None else start,
        hash_algorithm=hash_algorithm,
        issuer_name_hash=name_hash,
        issuer_key_hash=key_hash,
        serial=serial,
        status=status,
        revoked_at=revoked,
        reason=reason,
        this_update=start,
        next_update=end,
        nonce=nonce,
    )
    signature = responder.signer.sign(response_data)
    if not _verify(responder.certificate.public_key(), signature, response_data):  # type: ignore[arg-type]
        raise DomainError(
            ErrorKind.INTERNAL, "the OCSP signature does not verify under the responder certificate"
        )
    return ocsp_builder.assemble_response(
        response_data, algorithm, signature, _issuer_facts(responder.certificate).certificate_der
    )


def sign_trusted_list(
    root_element: object,
    *,
    signer: Signer,
    signer_certificate: x509.Certificate,
    signing_time: datetime,
) -> bytes:
    """Sign an unsigned TS 119 612 list (enveloped XAdES baseline-B) and return the exact bytes to publish.

    ``pki.tsl.prepare_signature`` builds the Signature around the canonical SignedInfo and checks the
    trusted-list signer profile; the draft re-verifies the value before it is written. Serve the returned
    bytes unchanged (never re-serialise a signed list).
    """
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from ehealth_certs.errors import DomainError as _DomainError
    from ehealth_certs.errors import ErrorKind as _ErrorKind
    from ehealth_certs.pki.tsl import prepare_signature

    spki = PublicFormat.SubjectPublicKeyInfo
    if signer.public_key.public_bytes(Encoding.DER, spki) != signer_certificate.public_key().public_bytes(
        Encoding.DER, spki
    ):
        raise _DomainError(
            _ErrorKind.CONFIGURATION, "the trusted-list signer key does not match its certificate"
        )
    draft = prepare_signature(
        root_element, signer_certificate=signer_certificate, scheme=signer.scheme, signing_time=signing_time
    )
    return draft.complete(signer.sign(draft.to_be_signed))


def issue_etk(
    ra_signer: Signer,
    ra_cert: x509.Certificate,
    encryption_cert: x509.Certificate,
    auth_cert: x509.Certificate,
    ca_chain: Sequence[x509.Certificate],
) -> bytes:
    """Sign an ETK (reference §5.1) with the EtkRA signer: CMS SignedData without signed attributes, so the
    SHA-256 PKCS#1 v1.5 signature covers the encryption-certificate DER itself."""
    from ehealth_certs.pki.etk import assemble_etk

    if ra_signer.scheme != SignatureScheme.RSA_PKCS1_SHA256:
        raise DomainError(ErrorKind.CONFIGURATION, "the EtkRA signer must use SHA-256 with RSA PKCS#1 v1.5")
    content = encryption_cert.public_bytes(serialization.Encoding.DER)
    return assemble_etk(content, ra_signer.sign(content), ra_cert, [auth_cert, *ca_chain])


def verify_signer(ca: CaKey, probe: bytes) -> None:
    """Health check: the signer can sign and its key matches the certificate (raises otherwise)."""
    signature = ca.signer.sign(probe)
    if not _verify(ca.certificate.public_key(), signature, probe):  # type: ignore[arg-type]
        raise DomainError(ErrorKind.CONFIGURATION, "the signer's key does not match its certificate")
