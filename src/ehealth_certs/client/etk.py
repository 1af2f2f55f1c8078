"""The holder's side of EtkRA: a new encryption key, the challenge, ToBeRegistered, activation.

The encryption key is written to the keystore (alias = decimal ETK serial, chain = the ToBeRegistered
certificate, which is exactly the encryption certificate inside the ETK) BEFORE CompleteETKRegistration is
sent: an ETK must never exist on the server without its private key on disk.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ehealth_certs.client.http import PlatformClient
from ehealth_certs.clock import Clock
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.etkra.verify import auth_signed_request
from ehealth_certs.pki.etk import Etk, build_to_be_registered, parse_etk, serial_from_secret, solve_challenge
from ehealth_certs.pki.keystore import KeyEntry

ENCRYPTION_KEY_BITS = 2048


def new_encryption_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, ENCRYPTION_KEY_BITS)


@dataclass(frozen=True)
class EtkRegistration:
    etk: Etk
    serial: str
    to_be_activated: bool


def _token(auth: KeyEntry, body: dict[str, str], clock: Clock) -> str:
    def sign(data: bytes) -> bytes:
        return auth.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    return auth_signed_request(list(auth.chain), sign, body, now=clock.now())


def register_etk(
    client: PlatformClient,
    auth: KeyEntry,
    clock: Clock,
    *,
    persist: Callable[[rsa.RSAPrivateKey, x509.Certificate], None],
    forget: Callable[[x509.Certificate], None],
    key_factory: Callable[[], rsa.RSAPrivateKey] = new_encryption_key,
) -> EtkRegistration:
    """Start and complete a registration; ``persist`` stores the key before completion, ``forget`` undoes it
    when the server refuses for sure."""
    key = key_factory()
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    started = client.etk_start(_token(auth, {"publicEncryptionKey": base64.b64encode(spki).decode()}, clock))
    secret = solve_challenge(base64.b64decode(started["challenge"]), key)
    tbr = build_to_be_registered(
        auth.certificate, auth.private_key, key.public_key(), serial_from_secret(secret)
    )
    persist(key, tbr)
    der = base64.b64encode(tbr.public_bytes(serialization.Encoding.DER)).decode()
    try:
        done = client.etk_complete(_token(auth, {"toBeRegistered": der}, clock))
    except DomainError as exc:
        if exc.kind is not ErrorKind.UNAVAILABLE:
            forget(tbr)
        raise
    etk = parse_etk(base64.b64decode(done["etk"]))
    if etk.encryption_certificate != tbr:
        raise DomainError(ErrorKind.INTERNAL, "the server's ETK does not hold the certificate we registered")
    return EtkRegistration(
        etk=etk, serial=str(tbr.serial_number), to_be_activated=bool(done["toBeActivated"])
    )


def activate_etk(client: PlatformClient, auth: KeyEntry, clock: Clock) -> str:
    """ActivateETK for the waiting ETK of ``auth``; returns the new status."""
    return str(client.etk_activate(_token(auth, {}, clock))["status"])


def made_for(cert: x509.Certificate, auth: x509.Certificate) -> bool:
    """True when ``cert`` is an encryption certificate built for the authentication certificate ``auth``."""
    return (
        cert.subject.public_bytes() == auth.subject.public_bytes()
        and cert.issuer.public_bytes() == auth.subject.public_bytes()
        and cert.not_valid_before_utc == auth.not_valid_before_utc
        and cert.not_valid_after_utc == auth.not_valid_after_utc
    )
