"""Sealed messages: the eHealth ETEE triple wrap (reference §10).

    outer  SignedData   RSASSA-PSS/SHA-256, signer certificate + chain, signed attrs contentType,
                        signingTime, messageDigest; eContent = DER of the middle layer
    middle EnvelopedData AES-128-CBC, one KeyTransRecipientInfo (rsaEncryption, PKCS#1 v1.5) per recipient
                        ETK, rid = issuerAndSerialNumber of the ETK encryption certificate
    inner  SignedData   over the content, no certificates, same signed attributes, same key

``seal`` signs with the sender's own eHealth authentication key (client side, not a CA key), so it does not
go through ``pki/issuer.py``. ``unseal`` reports problems the way the eHealth ETEE libraries do: a
validation status (is the data intact and correctly signed?), a trust status (do we trust the sender's
certificate?), and violations per layer and for the sender's certificate chain. Only structurally broken
input raises (MALFORMED_MESSAGE, NO_DECRYPTION_KEY).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import cms
from ehealth_certs.pki.cms import RevocationChecker, Violation, ViolationCode
from ehealth_certs.pki.etk import Etk
from ehealth_certs.pki.keystore import KeyEntry, Keystore

OUTER = "outer signature"
ENCRYPTION = "encryption"
INNER = "inner signature"
SENDER = "sender certificate"

MIN_SIGNATURE_KEY_BITS = 1024  # eID keys (UnsealActiveConfig); eHealth keys are 2048
MIN_ENCRYPTION_KEY_BITS = 2048
_CONTENT_CIPHERS = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32}
_SIGNATURE_ALGORITHMS = {"rsassa_pss", "rsassa_pkcs1v15", "sha256_rsa", "sha512_rsa", "sha256_ecdsa"}
_ALLOWED_SIGNATURE_HASHES = {"sha256", "sha512"}


class ValidationStatus(StrEnum):
    VALID = "VALID"
    INVALID = "INVALID"


class TrustStatus(StrEnum):
    FULL = "FULL"
    UNSURE = "UNSURE"
    NONE = "NONE"


# Certificate problems that make the signature itself unacceptable rather than the signer untrusted.
_CERT_INVALIDATING = {
    ViolationCode.WRONG_KEY_USAGE,
    ViolationCode.KEY_TOO_SMALL,
    ViolationCode.WRONG_KEY_TYPE,
}
_UNSURE = {ViolationCode.REVOCATION_UNKNOWN}


@dataclass(frozen=True)
class SecurityReport:
    outer_signature: list[Violation] = field(default_factory=list)
    encryption: list[Violation] = field(default_factory=list)
    inner_signature: list[Violation] = field(default_factory=list)
    sender_certificate: list[Violation] = field(default_factory=list)
    sender_chain: list[str] = field(default_factory=list)
    signing_time: datetime | None = None

    @property
    def validation(self) -> ValidationStatus:
        layer = self.outer_signature or self.encryption or self.inner_signature
        invalidating = any(v.code in _CERT_INVALIDATING for v in self.sender_certificate)
        return ValidationStatus.INVALID if layer or invalidating else ValidationStatus.VALID

    @property
    def trust(self) -> TrustStatus:
        codes = {v.code for v in self.sender_certificate}
        if codes - _UNSURE - _CERT_INVALIDATING:
            return TrustStatus.NONE
        if codes & _UNSURE:
            return TrustStatus.UNSURE
        return TrustStatus.FULL

    def to_json(self) -> dict[str, Any]:
        return {
            "validation": self.validation.value,
            "trust": self.trust.value,
            "signingTime": self.signing_time.isoformat() if self.signing_time else None,
            "senderChain": list(self.sender_chain),
            "violations": {
                "outerSignature": [v.to_json() for v in self.outer_signature],
                "encryption": [v.to_json() for v in self.encryption],
                "innerSignature": [v.to_json() for v in self.inner_signature],
                "senderCertificate": [v.to_json() for v in self.sender_certificate],
            },
        }


@dataclass(frozen=True)
class UnsealResult:
    content: bytes
    sender: x509.Certificate
    report: SecurityReport
    recipient_alias: str


# ---------------------------------------------------------------------------------------------------
# Sealing
# ---------------------------------------------------------------------------------------------------


def _pss_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())


def _signed_layer(
    content: bytes,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    certs: Sequence[x509.Certificate],
    now: datetime,
) -> bytes:
    attrs = cms.signed_attributes(content, now)
    signature = _pss_sign(key, cms.attrs_set_der(attrs))
    return cms.signed_data(
        content, cert, signature, signature_algorithm=cms.PSS_SHA256, signed_attrs=attrs, certificates=certs
    )


def _recipient_cert(recipient: Etk | x509.Certificate) -> x509.Certificate:
    cert = recipient.encryption_certificate if isinstance(recipient, Etk) else recipient
    pub = cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey) or pub.key_size < MIN_ENCRYPTION_KEY_BITS:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"recipient {cert.serial_number}: not an RSA key of 2048+ bits"
        )
    return cert


def _envelope(inner: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """The middle layer: AES-128-CBC content, one PKCS#1 v1.5 key transport per recipient."""
    cek, iv = os.urandom(16), os.urandom(16)
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(inner) + padder.finalize()
    encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    recipient_infos = []
    for cert in recipients:
        rsa_pub = cert.public_key()
        assert isinstance(rsa_pub, rsa.RSAPublicKey)  # checked by _recipient_cert
        recipient_infos.append(
            asn1_cms.RecipientInfo(
                {
                    "ktri": {
                        "version": "v0",
                        "rid": {"issuer_and_serial_number": cms.issuer_and_serial(cert)},
                        "key_encryption_algorithm": {"algorithm": "rsaes_pkcs1v15"},
                        "encrypted_key": rsa_pub.encrypt(cek, padding.PKCS1v15()),
                    }
                }
            )
        )
    enveloped = asn1_cms.ContentInfo(
        {
            "content_type": "enveloped_data",
            "content": {
                "version": "v0",
                "recipient_infos": recipient_infos,
                "encrypted_content_info": {
                    "content_type": "data",
                    "content_encryption_algorithm": {"algorithm": "aes128_cbc", "parameters": iv},
                    "encrypted_content": ciphertext,
                },
            },
        }
    ).dump()
    return bytes(enveloped)


def seal(
    content: bytes,
    sender_key: rsa.RSAPrivateKey,
    sender_chain: Sequence[x509.Certificate],
    recipient_etks: Sequence[Etk | x509.Certificate],
    now: datetime,
) -> bytes:
    """Triple-wrap ``content`` for every recipient ETK (validate the ETKs first with ``validate_etk``)."""
    if not sender_chain:
        raise DomainError(ErrorKind.BAD_REQUEST, "the sender chain is empty")
    if not recipient_etks:
        raise DomainError(ErrorKind.BAD_REQUEST, "a sealed message needs at least one recipient")
    sender = sender_chain[0]
    pub = sender.public_key()
    if (
        not isinstance(pub, rsa.RSAPublicKey)
        or pub.public_numbers() != sender_key.public_key().public_numbers()
    ):
        raise DomainError(ErrorKind.BAD_REQUEST, "the sender key does not match the sender certificate")
    recipients = [_recipient_cert(r) for r in recipient_etks]

    inner = _signed_layer(content, sender_key, sender, [], now)
    enveloped = _envelope(inner, recipients)
    return _signed_layer(enveloped, sender_key, sender, list(sender_chain), now)


# ---------------------------------------------------------------------------------------------------
# Unsealing
# ---------------------------------------------------------------------------------------------------


def _single_signer(signed: Any, what: str) -> Any:
    signers = list(signed["signer_infos"])
    if len(signers) != 1:
        raise cms.malformed(f"{what} has {len(signers)} signer infos, expected exactly one")
    return signers[0]


def _signing_time(signer: Any, what: str) -> datetime | None:
    value = cms.signed_attribute(signer, "signing_time", what)
    return None if value is None else value.native


def _algorithm_violations(signer: Any, target: str) -> list[Violation]:
    digest_name, sig_hash = cms.signature_algorithm_names(signer)
    algo = signer["signature_algorithm"]["algorithm"].native
    problems = []
    if digest_name not in _ALLOWED_SIGNATURE_HASHES:
        problems.append(f"digest {digest_name}")
    if algo not in _SIGNATURE_ALGORITHMS or sig_hash not in _ALLOWED_SIGNATURE_HASHES:
        problems.append(f"signature {algo}/{sig_hash}")
    return [Violation(ViolationCode.ALGORITHM_NOT_ALLOWED, target, ", ".join(problems))] if problems else []


def _sender_checks(
    sender: x509.Certificate,
    pool: list[x509.Certificate],
    trusted_cas: Sequence[x509.Certificate],
    now: datetime,
    allow_sha1: bool,
    revocation_checker: RevocationChecker | None,
) -> tuple[list[Violation], list[x509.Certificate]]:
    out: list[Violation] = []
    bits = cms.key_bits(sender)
    if bits is None:
        out.append(Violation(ViolationCode.WRONG_KEY_TYPE, SENDER, "the sender key is neither RSA nor EC"))
    elif isinstance(sender.public_key(), rsa.RSAPublicKey) and bits < MIN_SIGNATURE_KEY_BITS:
        out.append(Violation(ViolationCode.KEY_TOO_SMALL, SENDER, f"RSA key of {bits} bits"))
    ku = cms.key_usage(sender)
    if ku is not None and not ku.digital_signature:
        out.append(Violation(ViolationCode.WRONG_KEY_USAGE, SENDER, "KeyUsage lacks digitalSignature"))
    path = cms.check_path(
        sender,
        pool,
        trusted_cas,
        now,
        target=SENDER,
        allow_sha1=allow_sha1,
        revocation_checker=revocation_checker,
        check_revocation=True,
    )
    out.extend(path.violations)
    return out, path.path


def _decryption_candidates(keystores: Sequence[Keystore]) -> list[KeyEntry]:
    entries: list[KeyEntry] = []
    for ks in keystores:
        entries.extend(ks.decryption_keys().values())
    return entries


def _decrypt_envelope(middle: bytes, keystores: Sequence[Keystore]) -> tuple[bytes, str, list[Violation]]:
    env = cms.load_content_info(middle, "enveloped_data", "sealed message middle layer")
    violations: list[Violation] = []
    eci = env["encrypted_content_info"]
    algo = eci["content_encryption_algorithm"]
    cipher_name = algo["algorithm"].native
    if cipher_name not in _CONTENT_CIPHERS and cipher_name != "tripledes_3key":
        raise cms.malformed(f"content encryption {cipher_name} is not supported")
    if cipher_name not in _CONTENT_CIPHERS:
        violations.append(
            Violation(ViolationCode.ALGORITHM_NOT_ALLOWED, ENCRYPTION, f"content cipher {cipher_name}")
        )
    entries = _decryption_candidates(keystores)
    match: tuple[Any, KeyEntry] | None = None
    for ri in env["recipient_infos"]:
        if ri.name != "ktri":
            continue  # KEK recipients (KGSS, §10.6) need a key from KGSS, not from the keystore
        for entry in entries:
            if cms.sid_matches(ri.chosen["rid"], entry.certificate):
                match = (ri.chosen, entry)
                break
        if match:
            break
    if match is None:
        raise DomainError(
            ErrorKind.NO_DECRYPTION_KEY, "no key in the keystores matches a recipient of the message"
        )
    ktri, entry = match
    kea = ktri["key_encryption_algorithm"]["algorithm"].native
    key_padding: padding.AsymmetricPadding
    if kea == "rsaes_pkcs1v15":
        key_padding = padding.PKCS1v15()
    elif kea == "rsaes_oaep":
        key_padding = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    else:
        raise cms.malformed(f"key transport {kea} is not supported")
    if entry.private_key.key_size < MIN_ENCRYPTION_KEY_BITS:
        violations.append(
            Violation(
                ViolationCode.KEY_TOO_SMALL, ENCRYPTION, f"recipient key of {entry.private_key.key_size} bits"
            )
        )
    try:
        cek = entry.private_key.decrypt(ktri["encrypted_key"].native, key_padding)
    except ValueError as exc:
        raise cms.malformed("the content-encryption key cannot be decrypted") from exc
    iv = algo["parameters"].native
    try:
        cipher = algorithms.AES(cek) if cipher_name in _CONTENT_CIPHERS else TripleDES(cek)
        if cipher_name in _CONTENT_CIPHERS and len(cek) != _CONTENT_CIPHERS[cipher_name]:
            raise ValueError("key length")
        decryptor = Cipher(cipher, modes.CBC(iv)).decryptor()
        padded = decryptor.update(cms.octets(eci["encrypted_content"])) + decryptor.finalize()
        unpadder = sym_padding.PKCS7(cipher.block_size).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
    except (ValueError, TypeError) as exc:
        raise cms.malformed("the envelope does not decrypt (wrong key or corrupted content)") from exc
    return plain, entry.alias, violations


def unseal(
    message: bytes,
    keystores: Sequence[Keystore],
    *,
    trusted_cas: Sequence[x509.Certificate],
    now: datetime,
    revocation_checker: RevocationChecker | None = None,
    allow_sha1_certificates: bool = False,
) -> UnsealResult:
    """Open a sealed message with any decryption key of any keystore (all key generations).

    ``revocation_checker(cert, issuer)`` returns "good", "revoked" or "unknown"; without one the trust is
    at best UNSURE. ``allow_sha1_certificates`` accepts SHA-1 signed certificates (the ETEE fixtures).
    """
    outer = cms.load_content_info(message, "signed_data", "sealed message")
    outer_signer = _single_signer(outer, "outer layer")
    certs = cms.certificates_of(outer)
    sender = next((c for c in certs if cms.sid_matches(outer_signer["sid"], c)), None)
    if sender is None:
        raise cms.malformed("the outer layer does not carry the signer's certificate")
    signing_time = _signing_time(outer_signer, "outer layer")
    middle = cms.econtent(outer, "outer layer")

    outer_v = _algorithm_violations(outer_signer, OUTER)
    reason = cms.verify_signer_info(outer_signer, sender.public_key(), middle, "outer layer")
    if reason is not None:
        outer_v.append(Violation(ViolationCode.SIGNATURE_INVALID, OUTER, reason))
    sender_v, chain = _sender_checks(
        sender, certs, trusted_cas, now, allow_sha1_certificates, revocation_checker
    )

    plain, alias, enc_v = _decrypt_envelope(middle, keystores)

    inner = cms.load_content_info(plain, "signed_data", "sealed message inner layer")
    inner_signer = _single_signer(inner, "inner layer")
    _signing_time(inner_signer, "inner layer")  # several signing times are malformed here too
    content = cms.econtent(inner, "inner layer")
    inner_v = _algorithm_violations(inner_signer, INNER)
    inner_cert = sender
    if not cms.sid_matches(inner_signer["sid"], sender):
        inner_v.append(
            Violation(ViolationCode.INNER_SIGNER_DIFFERENT, INNER, "the inner signer is not the outer signer")
        )
        inner_cert = next((c for c in certs if cms.sid_matches(inner_signer["sid"], c)), sender)
    reason = cms.verify_signer_info(inner_signer, inner_cert.public_key(), content, "inner layer")
    if reason is not None:
        inner_v.append(Violation(ViolationCode.SIGNATURE_INVALID, INNER, reason))

    report = SecurityReport(
        outer_signature=outer_v,
        encryption=enc_v,
        inner_signature=inner_v,
        sender_certificate=sender_v,
        sender_chain=[c.subject.rfc4514_string() for c in chain],
        signing_time=signing_time,
    )
    return UnsealResult(content=content, sender=sender, report=report, recipient_alias=alias)
