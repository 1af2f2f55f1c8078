"""Signers: the only holders of private CA-side keys.

A ``Signer`` turns bytes into a signature and never hands out its key. The software implementation
keeps a PEM key file encrypted at rest (PKCS#8, AES-256-CBC with scrypt via BestAvailableEncryption);
a PKCS#11 signer can implement the same protocol later. Only ``pki/issuer.py`` calls ``sign``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ehealth_certs.errors import DomainError, ErrorKind


class SignatureScheme(StrEnum):
    RSA_PKCS1_SHA256 = "sha256WithRSAEncryption"
    RSA_PSS_SHA256 = "rsassa-pss-sha256"
    ECDSA_SHA256 = "ecdsa-with-SHA256"


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class Signer(Protocol):
    """Something that signs with a key it never reveals."""

    @property
    def public_key(self) -> PublicKey: ...

    @property
    def scheme(self) -> SignatureScheme:
        """The scheme used by ``sign`` (also written into the signed structures' AlgorithmIdentifier)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (hashing included) and return the raw signature value."""
        ...


@dataclass(frozen=True)
class SoftwareSigner:
    """A signer over an in-memory private key (loaded from an encrypted file, or generated)."""

    _key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    @property
    def scheme(self) -> SignatureScheme:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return SignatureScheme.RSA_PKCS1_SHA256
        return SignatureScheme.ECDSA_SHA256

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    # -- key files -----------------------------------------------------------------------------
    def write_encrypted(self, path: Path, passphrase: bytes) -> None:
        """Write the key encrypted at rest; the file is created 0600 and never overwritten."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())

    @classmethod
    def from_encrypted_file(cls, path: Path, passphrase: bytes) -> SoftwareSigner:
        try:
            key: PrivateKeyTypes = serialization.load_pem_private_key(path.read_bytes(), passphrase)
        except (ValueError, TypeError) as exc:
            raise DomainError(
                ErrorKind.CONFIGURATION, f"cannot decrypt the key file {path.name}: wrong passphrase?"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise DomainError(ErrorKind.CONFIGURATION, f"{path.name}: unsupported key type")
        return cls(key)

    @classmethod
    def generate_rsa(cls, bits: int) -> SoftwareSigner:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def generate_p256(cls) -> SoftwareSigner:
        return cls(ec.generate_private_key(ec.SECP256R1()))
