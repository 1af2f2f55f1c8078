"""ETK (encryption token): the registration challenge, the client-built ``ToBeRegistered`` certificate, the
ETK CMS itself, and its validation (reference §4.3, §4.4, §5).

An ETK is a DER ``ContentInfo(SignedData)``: eContent = the DER of the encryption certificate, one signer
(the EtkRA key, SHA-256, RSA PKCS#1 v1.5, no signed attributes), certificates = RA certificate +
authentication certificate + CA chain. Without signed attributes the RA signs the eContent bytes
themselves, so ``Signer.sign(encryption_cert_der)`` with SHA-256 PKCS#1 v1.5 is the whole signature.
Signing happens in ``pki/issuer.py`` (``issue_etk``), which hands the signature to ``assemble_etk``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import cms
from ehealth_certs.pki.cms import Violation, ViolationCode

SECRET_BYTES = 16
MIN_ENCRYPTION_KEY_BITS = 2048
MIN_AUTH_KEY_BITS = 2048

# Violation targets
RA = "ra"
ENCRYPTION = "encryption certificate"
AUTHENTICATION = "authentication certificate"


# ---------------------------------------------------------------------------------------------------
# Challenge (§4.3): C || SHA-256(S), C = RSAES-PKCS1-v1_5(S)
# ---------------------------------------------------------------------------------------------------


def make_challenge(public_key: rsa.RSAPublicKey) -> tuple[bytes, bytes]:
    """Server side: returns (challenge bytes, the 16-byte secret S to keep with the pending registration)."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise DomainError(ErrorKind.BAD_REQUEST, "the public encryption key is not an RSA key")
    secret = secrets.token_bytes(SECRET_BYTES)
    encrypted = public_key.encrypt(secret, padding.PKCS1v15())
    return encrypted + hashlib.sha256(secret).digest(), secret


def solve_challenge(challenge: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """Client side: decrypt the challenge and check its SHA-256 tail; returns S (the ETK serial is int(S))."""
    size = (private_key.key_size + 7) // 8
    if len(challenge) != size + 32:
        raise DomainError(
            ErrorKind.CHALLENGE_INVALID,
            f"challenge is {len(challenge)} bytes, expected {size + 32} for this key",
        )
    encrypted, tail = challenge[:size], challenge[size:]
    try:
        plain = private_key.decrypt(encrypted, padding.PKCS1v15())
    except ValueError as exc:
        raise DomainError(ErrorKind.CHALLENGE_INVALID, "challenge does not decrypt with this key") from exc
    secret = plain[:SECRET_BYTES]
    # OpenSSL's implicit rejection returns random bytes on bad padding: the hash check is what decides.
    if len(secret) != SECRET_BYTES or not hmac.compare_digest(hashlib.sha256(secret).digest(), tail):
        raise DomainError(ErrorKind.CHALLENGE_INVALID, "challenge hash does not match the decrypted secret")
    return secret


def serial_from_secret(secret: bytes) -> int:
    """Java ``new BigInteger(1, S)``."""
    return int.from_bytes(secret, "big")


# ---------------------------------------------------------------------------------------------------
# ToBeRegistered (§4.4): the "proxy" encryption certificate, self-issued by name, signed by the auth key
# ---------------------------------------------------------------------------------------------------

_ENC_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=True,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def build_to_be_registered(
    auth_cert: x509.Certificate,
    auth_key: rsa.RSAPrivateKey,
    enc_public_key: rsa.RSAPublicKey,
    serial: int,
) -> x509.Certificate:
    """Client side: the certificate sent in CompleteETKRegistration."""
    if serial <= 0:
        raise DomainError(ErrorKind.BAD_REQUEST, "the ETK serial must be positive")
    if not isinstance(enc_public_key, rsa.RSAPublicKey) or enc_public_key.key_size < MIN_ENCRYPTION_KEY_BITS:
        raise DomainError(ErrorKind.BAD_REQUEST, "the encryption key must be RSA of at least 2048 bits")
    if not _same_public_key(auth_cert, auth_key.public_key()):
        raise DomainError(ErrorKind.BAD_REQUEST, "the authentication key does not match its certificate")
    builder = (
        x509.CertificateBuilder()
        .subject_name(auth_cert.subject)
        .issuer_name(auth_cert.subject)
        .serial_number(serial)
        .not_valid_before(auth_cert.not_valid_before_utc)
        .not_valid_after(auth_cert.not_valid_after_utc)
        .public_key(enc_public_key)
        .add_extension(_ENC_KEY_USAGE, critical=True)
    )
    params = auth_cert.signature_algorithm_parameters
    algorithm = auth_cert.signature_hash_algorithm
    if not isinstance(algorithm, hashes.SHA256 | hashes.SHA384 | hashes.SHA512):
        # pyca/cryptography no longer signs with SHA-1; such auth certificates must be renewed first.
        raise DomainError(
            ErrorKind.BAD_REQUEST, "the auth certificate's signature algorithm cannot be reused"
        )
    rsa_padding = params if isinstance(params, padding.PSS) else None
    cert = builder.sign(auth_key, algorithm, rsa_padding=rsa_padding)
    if cert.subject.public_bytes() != auth_cert.subject.public_bytes():
        # cryptography re-encodes names; the encoding must match byte for byte (string types included).
        raise DomainError(ErrorKind.BAD_REQUEST, "the auth subject DN cannot be re-encoded identically")
    return cert


def check_to_be_registered(
    cert: x509.Certificate,
    auth_cert: x509.Certificate,
    expected_serial: int,
    enc_public_key: rsa.RSAPublicKey,
) -> None:
    """Server side: every fact of §4.4, each failure a DomainError naming it."""

    def bad(detail: str) -> DomainError:
        return DomainError(ErrorKind.BAD_REQUEST, f"ToBeRegistered: {detail}")

    if cert.serial_number != expected_serial:
        raise DomainError(ErrorKind.CHALLENGE_INVALID, "ToBeRegistered: serial is not the challenge secret")
    if cert.version != x509.Version.v3:
        raise bad("not an X.509 v3 certificate")
    auth_subject = auth_cert.subject.public_bytes()
    if cert.issuer.public_bytes() != auth_subject:
        raise bad("issuer is not the authentication certificate's subject (byte for byte)")
    if cert.subject.public_bytes() != auth_subject:
        raise bad("subject is not the authentication certificate's subject (byte for byte)")
    if (
        cert.not_valid_before_utc != auth_cert.not_valid_before_utc
        or cert.not_valid_after_utc != auth_cert.not_valid_after_utc
    ):
        raise bad("validity is not copied from the authentication certificate")
    pub = cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey) or pub.key_size < MIN_ENCRYPTION_KEY_BITS:
        raise bad("public key is not RSA of at least 2048 bits")
    if pub.public_numbers() != enc_public_key.public_numbers():
        raise bad("public key is not the key the challenge was made for")
    exts = list(cert.extensions)
    if len(exts) != 1 or not isinstance(exts[0].value, x509.KeyUsage):
        raise bad("must carry exactly one extension, KeyUsage")
    if not exts[0].critical:
        raise bad("KeyUsage is not critical")
    if exts[0].value != _ENC_KEY_USAGE:
        raise bad("KeyUsage is not exactly keyEncipherment + dataEncipherment")
    if cert.signature_algorithm_oid != auth_cert.signature_algorithm_oid:
        raise bad("signature algorithm differs from the authentication certificate's")
    if not cms.certificate_signature_valid(cert, auth_cert.public_key()):
        raise bad("signature does not verify with the authentication certificate's key")


def _same_public_key(cert: x509.Certificate, key: rsa.RSAPublicKey) -> bool:
    pub = cert.public_key()
    return isinstance(pub, rsa.RSAPublicKey) and pub.public_numbers() == key.public_numbers()


# ---------------------------------------------------------------------------------------------------
# ETK CMS
# ---------------------------------------------------------------------------------------------------


def assemble_etk(
    content_der: bytes, signature: bytes, ra_cert: x509.Certificate, other_certs: Sequence[x509.Certificate]
) -> bytes:
    """DER ETK from the encryption-certificate DER and the RA's SHA-256 PKCS#1 v1.5 signature over it."""
    try:
        x509.load_der_x509_certificate(content_der)
    except ValueError as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, "ETK content is not a DER certificate") from exc
    if not _signature_ok(ra_cert, signature, content_der):
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the RA signature does not verify over the ETK content")
    return cms.signed_data(
        content_der,
        ra_cert,
        signature,
        signature_algorithm=cms.PKCS1_RSA,
        signed_attrs=None,
        certificates=[ra_cert, *other_certs],
    )


def _signature_ok(cert: x509.Certificate, signature: bytes, data: bytes, digest: str = "sha256") -> bool:
    pub = cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        return False
    try:
        pub.verify(signature, data, padding.PKCS1v15(), cms.hash_by_name(digest))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Etk:
    """The five parts the Java library exposes."""

    encoded: bytes
    encryption_certificate: x509.Certificate
    authentication_certificate: x509.Certificate
    ca_chain: list[x509.Certificate]
    ra_certificate: x509.Certificate
    signature_valid: bool
    digest_algorithm: str


def parse_etk(der: bytes) -> Etk:
    """Parse an ETK (BER accepted). Broken structure raises MALFORMED_MESSAGE; policy is ``validate_etk``."""
    sd = cms.load_content_info(der, "signed_data", "ETK")
    content = cms.econtent(sd, "ETK")
    try:
        enc = x509.load_der_x509_certificate(content)
    except ValueError as exc:
        raise cms.malformed("ETK content is not a DER X.509 certificate") from exc
    certs = cms.certificates_of(sd)
    signers = list(sd["signer_infos"])
    if len(signers) != 1:
        raise cms.malformed(f"ETK has {len(signers)} signer infos, expected exactly one")
    signer = signers[0]
    ra = next((c for c in certs if cms.sid_matches(signer["sid"], c)), None)
    if ra is None:
        raise cms.malformed("ETK does not carry the RA signing certificate")
    digest_name = signer["digest_algorithm"]["algorithm"].native
    valid = cms.verify_signer_info(signer, ra.public_key(), content, "ETK") is None
    others = _unique([c for c in certs if c != ra and c != enc])
    auth = _find_auth(enc, others)
    if auth is None:
        raise cms.malformed("ETK does not carry an authentication certificate")
    chain = [c for c in others if c != auth]
    return Etk(der, enc, auth, chain, ra, valid, digest_name)


def _unique(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for c in certs:
        if c not in out:
            out.append(c)
    return out


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cms.is_self_signed(cert)


def _find_auth(enc: x509.Certificate, certs: list[x509.Certificate]) -> x509.Certificate | None:
    leaves = [c for c in certs if not _is_ca(c)]
    # Same DN as the encryption certificate (current and old styles), else the proxy's issuer by name.
    for name in (enc.subject, enc.issuer):
        found = next((c for c in leaves if cms.same_name(c.subject, name)), None)
        if found is not None:
            return found
    return leaves[0] if leaves else None


def validate_etk(
    etk: Etk,
    *,
    trusted_cas: Sequence[x509.Certificate],
    now: datetime,
    allow_sha1: bool = False,
    trusted_ra: Sequence[x509.Certificate] | None = None,
) -> list[Violation]:
    """The §5.2 rules; an empty list means the ETK may be used as of ``now``.

    ``allow_sha1`` accepts SHA-1 digests and certificate signatures (the ETEE fixtures need it). The RA
    certificate's own validity period is not checked (an ETK outlives the RA certificate that signed it);
    its identity is checked against ``trusted_ra`` when given.
    """
    out: list[Violation] = []
    ok_digests = cms.STRONG_DIGESTS | ({"sha1"} if allow_sha1 else set())
    if not etk.signature_valid:
        out.append(Violation(ViolationCode.SIGNATURE_INVALID, RA, "the RA signature does not verify"))
    if etk.digest_algorithm not in ok_digests:
        out.append(
            Violation(
                ViolationCode.ALGORITHM_NOT_ALLOWED, RA, f"ETK signed with digest {etk.digest_algorithm}"
            )
        )
    if trusted_ra is not None and etk.ra_certificate not in trusted_ra:
        out.append(Violation(ViolationCode.UNTRUSTED_ISSUER, RA, "the ETK is not signed by a trusted EtkRA"))

    enc, auth = etk.encryption_certificate, etk.authentication_certificate
    out.extend(_key_checks(enc, ENCRYPTION, MIN_ENCRYPTION_KEY_BITS))
    ku = cms.key_usage(enc)
    if ku is None or not (ku.key_encipherment and ku.data_encipherment):
        out.append(
            Violation(
                ViolationCode.WRONG_KEY_USAGE, ENCRYPTION, "KeyUsage lacks keyEncipherment + dataEncipherment"
            )
        )
    if not cms.time_valid(enc, now):
        out.append(
            Violation(
                ViolationCode.NOT_TIME_VALID,
                ENCRYPTION,
                f"valid {enc.not_valid_before_utc:%Y-%m-%d} to {enc.not_valid_after_utc:%Y-%m-%d}",
            )
        )
    if not cms.same_name(enc.subject, auth.subject):
        out.append(
            Violation(
                ViolationCode.DN_MISMATCH, ENCRYPTION, "subject differs from the authentication certificate"
            )
        )
    pool = [auth, *etk.ca_chain]
    if cms.same_name(enc.issuer, enc.subject) and not cms.is_self_signed(enc):
        # Proxy style: signed by the auth key, validity and trust follow the auth certificate.
        if not cms.certificate_signature_valid(enc, auth.public_key()):
            out.append(
                Violation(
                    ViolationCode.ISSUER_SIGNATURE_INVALID,
                    ENCRYPTION,
                    "not signed by the authentication certificate's key",
                )
            )
        out.extend(_hash_check(enc, ENCRYPTION, allow_sha1))
    else:
        enc_path = cms.check_path(enc, pool, trusted_cas, now, target=ENCRYPTION, allow_sha1=allow_sha1)
        leaf_name = enc.subject.rfc4514_string()
        out.extend(
            v
            for v in enc_path.violations
            if not (
                v.code == ViolationCode.NOT_TIME_VALID and v.detail.startswith(leaf_name)
            )  # reported above
        )

    out.extend(_key_checks(auth, AUTHENTICATION, MIN_AUTH_KEY_BITS))
    auth_ku = cms.key_usage(auth)
    if auth_ku is None or not (auth_ku.digital_signature and auth_ku.content_commitment):
        out.append(
            Violation(
                ViolationCode.WRONG_KEY_USAGE,
                AUTHENTICATION,
                "KeyUsage lacks digitalSignature + nonRepudiation",
            )
        )
    auth_path = cms.check_path(
        auth, etk.ca_chain, trusted_cas, now, target=AUTHENTICATION, allow_sha1=allow_sha1
    )
    out.extend(auth_path.violations)
    return _dedupe(out)


def _key_checks(cert: x509.Certificate, target: str, min_bits: int) -> list[Violation]:
    pub = cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        return [Violation(ViolationCode.WRONG_KEY_TYPE, target, "the key is not RSA")]
    if pub.key_size < min_bits:
        return [
            Violation(ViolationCode.KEY_TOO_SMALL, target, f"RSA key of {pub.key_size} bits < {min_bits}")
        ]
    return []


def _hash_check(cert: x509.Certificate, target: str, allow_sha1: bool) -> list[Violation]:
    algorithm = cert.signature_hash_algorithm
    name = algorithm.name if algorithm is not None else "none"
    if name in cms.STRONG_DIGESTS or (allow_sha1 and name == "sha1"):
        return []
    return [Violation(ViolationCode.ALGORITHM_NOT_ALLOWED, target, f"signed with {name}")]


def _dedupe(items: list[Violation]) -> list[Violation]:
    out: list[Violation] = []
    for v in items:
        if v not in out:
            out.append(v)
    return out
