"""The citizen's eID as the Certificate Manager sees it: two certificates and two keys that sign.

``EidCard`` is what the rest of the client codes against. ``FileEid`` implements it with a
PIN-protected file made by ``ehcerts dev make-eid``; a PKCS#11 implementation for real cards can
implement the same protocol later, since nothing outside the card ever needs a private key, only
``sign_with_authentication`` / ``sign_with_signature``.

Test eID file format (JSON, UTF-8, mode 0600)::

    {
      "format": "ehcerts-test-eid/1",
      "citizen_ca": "<PEM certificate of the (test) Citizen CA>",
      "authentication": {"certificate": "<PEM>", "private_key": "<PEM, encrypted PKCS#8>"},
      "signature":      {"certificate": "<PEM>", "private_key": "<PEM, encrypted PKCS#8>"}
    }

Both private keys are encrypted with the PIN (PKCS#8, ``BestAvailableEncryption``); the
certificates are public and stored in clear, as they are readable on a real card without the PIN.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.eid_dev import TestEid
from ehealth_certs.pki.jws import hash_for_public_key, sign_jws, signed_envelope

FILE_FORMAT = "ehcerts-test-eid/1"
MIN_PIN_LENGTH = 4
# A real file is a few kilobytes; refuse to parse anything that is clearly not one.
_MAX_FILE_BYTES = 256 * 1024

EidKey = Literal["authentication", "signature"]
_CardKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class EidCard(Protocol):
    """A Belgian eID (or a stand-in): certificate chains and signing with keys that never leave it."""

    @property
    def authentication_chain(self) -> list[x509.Certificate]:
        """[Authentication certificate, Citizen CA]."""
        ...

    @property
    def signature_chain(self) -> list[x509.Certificate]:
        """[Signature certificate, Citizen CA]."""
        ...

    def sign_with_authentication(self, data: bytes) -> bytes:
        """Hash ``data`` and sign it with the Authentication key (RSA: SHA-256, PKCS#1 v1.5)."""
        ...

    def sign_with_signature(self, data: bytes) -> bytes:
        """Hash ``data`` and sign it with the Signature key (RSA: SHA-256, PKCS#1 v1.5)."""
        ...

    @property
    def ssin(self) -> str: ...

    @property
    def first_name(self) -> str: ...

    @property
    def last_name(self) -> str: ...


class FileEid:
    """An ``EidCard`` backed by a PIN-protected test eID file (see the module docstring)."""

    def __init__(
        self,
        *,
        citizen_ca: x509.Certificate,
        authentication: tuple[x509.Certificate, _CardKey],
        signature: tuple[x509.Certificate, _CardKey],
    ) -> None:
        for role, (cert, key) in (("authentication", authentication), ("signature", signature)):
            if _spki(cert.public_key()) != _spki(key.public_key()):
                raise DomainError(ErrorKind.BAD_REQUEST, f"the {role} key does not match its certificate")
        self._citizen_ca = citizen_ca
        self._authentication = authentication
        self._signature = signature

    # -- EidCard ----------------------------------------------------------------------------------
    @property
    def authentication_chain(self) -> list[x509.Certificate]:
        return [self._authentication[0], self._citizen_ca]

    @property
    def signature_chain(self) -> list[x509.Certificate]:
        return [self._signature[0], self._citizen_ca]

    def sign_with_authentication(self, data: bytes) -> bytes:
        return _sign(self._authentication[1], data)

    def sign_with_signature(self, data: bytes) -> bytes:
        return _sign(self._signature[1], data)

    @property
    def ssin(self) -> str:
        return _attribute(self._authentication[0], NameOID.SERIAL_NUMBER)

    @property
    def first_name(self) -> str:
        return _attribute(self._authentication[0], NameOID.GIVEN_NAME)

    @property
    def last_name(self) -> str:
        return _attribute(self._authentication[0], NameOID.SURNAME)

    # -- the file ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, pin: str) -> FileEid:
        """Read a test eID file and unlock its keys with ``pin``.

        ``DomainError(UNAUTHENTICATED, "wrong PIN")`` if the PIN does not decrypt the keys,
        ``NOT_FOUND`` if there is no file, ``BAD_REQUEST`` if the file is not a test eID file.
        """
        document = _read_document(path)
        try:
            citizen_ca = _load_certificate(document["citizen_ca"])
            pairs = []
            for role in ("authentication", "signature"):
                entry = document[role]
                if not isinstance(entry, dict):
                    raise TypeError(role)
                pairs.append((_load_certificate(entry["certificate"]), entry["private_key"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DomainError(ErrorKind.BAD_REQUEST, f"{path.name} is not a valid test eID file") from exc
        keys = [_decrypt_key(pem, pin, path) for _, pem in pairs]
        return cls(
            citizen_ca=citizen_ca,
            authentication=(pairs[0][0], keys[0]),
            signature=(pairs[1][0], keys[1]),
        )

    @staticmethod
    def write(path: Path, eid: TestEid, pin: str) -> None:
        """Write ``eid`` to ``path`` with both keys encrypted under ``pin``.

        The file is created 0600, atomically (temporary file, fsync, hard link into place) and never
        overwrites an existing file (``DomainError(CONFLICT)``).
        """
        if len(pin) < MIN_PIN_LENGTH:
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"the PIN must have at least {MIN_PIN_LENGTH} characters"
            )
        if path.exists() or path.is_symlink():
            raise DomainError(ErrorKind.CONFLICT, f"{path} already exists; it is never overwritten")
        encryption = serialization.BestAvailableEncryption(pin.encode("utf-8"))

        def entry(pair: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> dict[str, str]:
            cert, key = pair
            return {
                "certificate": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                "private_key": key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
                ).decode("ascii"),
            }

        document = {
            "format": FILE_FORMAT,
            "citizen_ca": eid.citizen_ca.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "authentication": entry(eid.authentication),
            "signature": entry(eid.signature),
        }
        _write_new_file(path, json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n")


def signed_request(card: EidCard, key: EidKey, body: Mapping[str, Any], *, now: datetime) -> str:
    """The JWS the HTTP client POSTs for an eID-signed operation.

    The payload is ``{"body": body, "id": "_<uuid4>", "issueInstant": "YYYY-MM-DDTHH:MM:SSZ"}`` as
    compact JSON with sorted keys; ``id`` lets the server refuse replays, ``issueInstant`` bounds the
    token's age. ``key`` picks the eID key the eHealth protocol prescribes for the operation.
    """
    if key == "authentication":
        chain, sign = card.authentication_chain, card.sign_with_authentication
    elif key == "signature":
        chain, sign = card.signature_chain, card.sign_with_signature
    else:
        raise DomainError(ErrorKind.BAD_REQUEST, f"unknown eID key {key!r}")
    return sign_jws(signed_envelope(body, now=now), chain=chain, sign=sign)


# -- helpers --------------------------------------------------------------------------------------
def _sign(key: _CardKey, data: bytes) -> bytes:
    # The hash follows the JWS algorithm of the key (SHA-384 for P-384), as a card would be told to.
    algorithm = hash_for_public_key(key.public_key())
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm)
    return key.sign(data, ec.ECDSA(algorithm))


def _attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode("utf-8")


def _spki(public_key: object) -> bytes:
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise DomainError(ErrorKind.BAD_REQUEST, "unsupported eID key type")
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _read_document(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = fh.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise DomainError(ErrorKind.NOT_FOUND, f"no test eID file at {path}") from exc
    except OSError as exc:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"cannot read the test eID file {path}: {exc.strerror}"
        ) from exc
    if len(raw) > _MAX_FILE_BYTES:
        raise DomainError(ErrorKind.BAD_REQUEST, f"{path.name} is too large to be a test eID file")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, f"{path.name} is not a valid test eID file") from exc
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        raise DomainError(ErrorKind.BAD_REQUEST, f"{path.name} is not a {FILE_FORMAT} file")
    return document


def _load_certificate(pem: Any) -> x509.Certificate:
    if not isinstance(pem, str):
        raise TypeError("certificate")
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def _decrypt_key(pem: Any, pin: str, path: Path) -> _CardKey:
    if not isinstance(pem, str):
        raise DomainError(ErrorKind.BAD_REQUEST, f"{path.name} is not a valid test eID file")
    # An unencrypted key would make the PIN meaningless: refuse it rather than load it.
    if not pem.lstrip().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----"):
        raise DomainError(ErrorKind.BAD_REQUEST, f"{path.name} holds a key that is not PIN-encrypted")
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), pin.encode("utf-8"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        # cryptography cannot tell a wrong password from a corrupted ciphertext; a PIN is the usual cause.
        raise DomainError(ErrorKind.UNAUTHENTICATED, "wrong PIN") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise DomainError(ErrorKind.BAD_REQUEST, f"{path.name} holds an unsupported key type")
    return key


def _write_new_file(path: Path, data: bytes) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # link() refuses an existing target, unlike rename(): a file that appeared meanwhile survives.
        try:
            os.link(temporary, path)
        except FileExistsError as exc:
            raise DomainError(ErrorKind.CONFLICT, f"{path} already exists; it is never overwritten") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
