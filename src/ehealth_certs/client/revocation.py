"""Client-side revocation status for unsealing: ask the OCSP responder named in the certificate's AIA.

Anything short of a verified, fresh, matching answer is "unknown" (the unseal trust becomes UNSURE): no
AIA, network error, malformed answer, a signature that does not verify, a responder the issuer did not
authorise, or an answer for another certificate.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ehealth_certs.pki.cms import RevocationChecker, RevocationStatus

MAX_RESPONSE_BYTES = 64 * 1024
CLOCK_SKEW = timedelta(minutes=5)


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and str(d.access_location.value).startswith(("http://", "https://"))
    ]


def _signature_ok(signer: x509.Certificate, response: ocsp.OCSPResponse) -> bool:
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def _authorised_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate | None:
    """The issuer itself, or a delegated responder it issued with id-kp-OCSPSigning (RFC 6960 §4.2.2.2)."""
    if _signature_ok(issuer, response):
        return issuer
    for cert in response.certificates:
        try:
            cert.verify_directly_issued_by(issuer)
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in eku and _signature_ok(cert, response):
            return cert
    return None


def check_ocsp(
    cert: x509.Certificate, issuer: x509.Certificate, *, now: datetime, http: httpx.Client
) -> RevocationStatus:
    for url in ocsp_urls(cert):
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303
        try:
            answer = http.post(
                url,
                content=request.public_bytes(serialization.Encoding.DER),
                headers={"Content-Type": "application/ocsp-request"},
            )
        except httpx.HTTPError:
            continue
        if answer.status_code != 200 or len(answer.content) > MAX_RESPONSE_BYTES:
            continue
        try:
            response = ocsp.load_der_ocsp_response(answer.content)
            if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                continue
            if (
                response.serial_number != cert.serial_number
                or response.issuer_key_hash != request.issuer_key_hash
            ):
                continue
            if _authorised_signer(response, issuer) is None:
                continue
            this_update = response.this_update_utc
            next_update = response.next_update_utc
        except ValueError:
            continue
        if this_update > now + CLOCK_SKEW or (next_update is not None and next_update < now - CLOCK_SKEW):
            continue
        if response.certificate_status == ocsp.OCSPCertStatus.GOOD:
            return "good"
        if response.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            return "revoked"
    return "unknown"


def ocsp_checker(
    now: datetime, *, http: httpx.Client | None = None, timeout: float = 5.0
) -> RevocationChecker:
    """A ``RevocationChecker`` for ``pki/seal.unseal`` that asks the AIA OCSP responders."""
    client = http if http is not None else httpx.Client(timeout=timeout)

    def check(cert: x509.Certificate, issuer: x509.Certificate) -> RevocationStatus:
        return check_ocsp(cert, issuer, now=now, http=client)

    return check
