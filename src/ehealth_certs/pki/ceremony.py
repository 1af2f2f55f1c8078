"""The CA ceremony: one independent PKI per environment (acceptance and production share no trust).

Per environment it creates fresh keys and certificates:

==============  ===========  ==========================================================================
role            key          certificate
==============  ===========  ==========================================================================
root            RSA-4096     self-signed, 25 years, keyCertSign + cRLSign, AKI = own SKI
issuing         RSA-4096     under the root, 10 years, pathLen 0, CDP ``root.crl``, AIA ``root.crt``
ocsp            P-256        delegated responder: id-kp-OCSPSigning + id-pkix-ocsp-nocheck, 2 years
etkra           RSA-3072     EtkRA CMS signer: KU digitalSignature (critical), 3 years
tsl             RSA-3072     trusted-list signer: KU digitalSignature + nonRepudiation, EKU
                             0.4.0.2231.3.0, 3 years
==============  ===========  ==========================================================================

All signatures are sha256WithRSAEncryption (the CAs are RSA). Service certificates never outlive the
issuing CA (``validity_window`` refuses).

URL shapes, with ``P = f"{base_url}/pki/{environment}"`` (environment: ``acceptance`` or ``production``):

* ``P/root.crt``     the root certificate (DER)          - AIA caIssuers of the issuing CA
* ``P/root.crl``     the root's CRL of CA certificates   - CDP of the issuing CA (``sign_crl(root, ...)``)
* ``P/issuing.crt``  the issuing CA certificate (DER)    - AIA caIssuers of leaves and service certificates
* ``P/crl``          the issuing CA's CRL (DER)          - CDP of leaves (``leaf_urls``)
* ``P/ocsp``         the OCSP responder (POST, GET)      - AIA OCSP of leaves

Pure code: ``now`` is given; keys are generated in memory and handed out only as ``SoftwareSigner``s (the
caller writes them encrypted with ``SoftwareSigner.write_encrypted``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from ehealth_certs.environment import Environment
from ehealth_certs.pki import issuer
from ehealth_certs.pki.issuer import CaKey
from ehealth_certs.pki.profiles import (
    CaProfile,
    LeafProfile,
    etkra_signer_profile,
    issuing_ca_profile,
    normalise_time,
    ocsp_responder_profile,
    root_ca_profile,
    tsl_signer_profile,
    validity_window,
)
from ehealth_certs.pki.signing import Signer, SoftwareSigner

ORGANISATION = "ehealth-certs"
_END_OF_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # a root has no issuer to outlive


@dataclass(frozen=True)
class EnvironmentPki:
    root: CaKey
    issuing: CaKey
    ocsp: CaKey
    etkra: CaKey
    tsl: CaKey


def _base(environment: Environment, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/pki/{environment.value}"


def leaf_urls(environment: Environment, base_url: str) -> tuple[str, str, str]:
    """``(crl_url, ocsp_url, ca_issuers_url)`` written into certificates of the environment's issuing CA."""
    base = _base(environment, base_url)
    return f"{base}/crl", f"{base}/ocsp", f"{base}/issuing.crt"


def ca_name(environment: Environment, role: str) -> x509.Name:
    """``CN=ehealth-certs <Environment> <role> 001, O=ehealth-certs, C=BE`` (C PrintableString, rest UTF8)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{ORGANISATION} {environment.value.title()} {role} 001"),
        ]
    )


def _service_certificate(
    issuing: CaKey,
    profile: LeafProfile,
    role: str,
    signer: Signer,
    start: datetime,
    urls: tuple[str, str, str],
) -> CaKey:
    not_before, not_after = validity_window(profile, start, issuing.certificate.not_valid_after_utc)
    crl_url, ocsp_url, ca_issuers_url = urls
    prepared = issuer.prepare_leaf(
        ca=issuing,
        profile=profile,
        subject=ca_name(profile.environment, role),
        public_key=signer.public_key,
        serial=issuer.random_serial(),
        not_before=not_before,
        not_after=not_after,
        crl_url=crl_url,
        ocsp_url=ocsp_url,
        ca_issuers_url=ca_issuers_url,
    )
    return CaKey(issuer.sign_prepared(issuing, prepared), signer)


def _self_signed(
    prepare: Callable[..., issuer.PreparedCertificate],
    signer: SoftwareSigner,
    profile: CaProfile | LeafProfile,
    subject: x509.Name,
    start: datetime,
) -> CaKey:
    """A self-signed certificate (the root CA, the trusted-list signer): ``prepare`` builds and lints it."""
    not_before, not_after = validity_window(profile, start, _END_OF_TIME)
    prepared = prepare(
        signer=signer,
        profile=profile,
        subject=subject,
        serial=issuer.random_serial(),
        not_before=not_before,
        not_after=not_after,
    )
    return CaKey(issuer.sign_root(signer, prepared), signer)


def create_environment_pki(environment: Environment, *, now: datetime, base_url: str) -> EnvironmentPki:
    """Generate the root, issuing CA and service certificates of one environment (see module docstring)."""
    start = normalise_time(now)
    base = _base(environment, base_url)

    root = _self_signed(
        issuer.prepare_root,
        SoftwareSigner.generate_rsa(4096),
        root_ca_profile(environment),
        ca_name(environment, "Root CA"),
        start,
    )

    issuing_signer = SoftwareSigner.generate_rsa(4096)
    issuing_profile = issuing_ca_profile(environment)
    issuing_start, issuing_end = validity_window(issuing_profile, start, root.certificate.not_valid_after_utc)
    issuing_prepared = issuer.prepare_ca(
        ca=root,
        profile=issuing_profile,
        subject=ca_name(environment, "Issuing CA"),
        public_key=issuing_signer.public_key,
        serial=issuer.random_serial(),
        not_before=issuing_start,
        not_after=issuing_end,
        crl_url=f"{base}/root.crl",
        ca_issuers_url=f"{base}/root.crt",
    )
    issuing = CaKey(issuer.sign_prepared(root, issuing_prepared), issuing_signer)

    urls = leaf_urls(environment, base_url)
    ocsp = _service_certificate(
        issuing,
        ocsp_responder_profile(environment),
        "OCSP Responder",
        SoftwareSigner.generate_p256(),
        start,
        urls,
    )
    etkra = _service_certificate(
        issuing, etkra_signer_profile(environment), "EtkRA", SoftwareSigner.generate_rsa(3072), start, urls
    )
    # The trusted-list signer is self-signed (CA:FALSE), like the Belgian scheme operator's: it is pinned by
    # clients, and it must not depend on the CAs the list distributes.
    tsl = _self_signed(
        issuer.prepare_self_signed,
        SoftwareSigner.generate_rsa(3072),
        tsl_signer_profile(environment),
        ca_name(environment, "Trusted List Signer"),
        start,
    )
    return EnvironmentPki(root=root, issuing=issuing, ocsp=ocsp, etkra=etkra, tsl=tsl)
