"""The Certificate Manager: the holder's side of CertRA.

Keys are generated here and never leave the holder. The keystore is written as soon as the key exists
(with a placeholder certificate, as the eHealth client does), so a request that waits for an operator
can be completed later from the same file.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ehealth_certs.client.eid import EidCard, signed_request
from ehealth_certs.client.etk import activate_etk, made_for, new_encryption_key, register_etk
from ehealth_certs.client.http import PlatformClient
from ehealth_certs.clock import Clock
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.keys import public_key_identifier
from ehealth_certs.pki.keystore import KeyEntry, Keystore, keystore_filename, load_keystore, save_keystore
from ehealth_certs.pki.names import EHealthName, keystore_file_stem, parse_subject

AUTH_KEY_BITS = 2048


def _placeholder(key: rsa.RSAPrivateKey, clock: Clock) -> x509.Certificate:
    """The stand-in certificate a pending key is stored with (eHealth client: C=Dummy, one minute, yesterday)."""
    start = clock.now().replace(microsecond=0) - timedelta(days=1)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "DU"), x509.NameAttribute(NameOID.COMMON_NAME, "Dummy")]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(minutes=1))
        .add_extension(
            x509.KeyUsage(False, False, True, True, False, False, False, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )


def is_placeholder(cert: x509.Certificate) -> bool:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return cert.subject == cert.issuer and bool(attrs) and attrs[0].value == "Dummy"


def _csr(key: rsa.RSAPrivateKey, dn: str) -> bytes:
    subject = x509.Name.from_rfc4514_string(dn)
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


@dataclass(frozen=True)
class RequestOutcome:
    keystore: Path
    public_key_identifier: str
    automatically_validated: bool
    delivered: bool
    replaces_certificate: str | None = None
    certificate: x509.Certificate | None = None
    etk_serial: str | None = None  # decimal: the keystore alias of the new encryption key
    etk_status: str | None = None  # VALID_ACTIVE once registered (and activated, after a renewal)


@dataclass
class CertificateManager:
    client: PlatformClient
    clock: Clock
    confirm: Callable[[dict[str, Any]], bool]  # shows the contract; True means accepted
    progress: Callable[[str], None] = lambda _msg: None
    sleep: Callable[[float], None] = field(default=lambda _s: None)
    poll_interval: float = 10.0
    max_wait: float = 0.0  # seconds to wait for delivery (operator approval can take days)
    key_factory: Callable[[], rsa.RSAPrivateKey] = lambda: rsa.generate_private_key(65537, AUTH_KEY_BITS)
    encryption_key_factory: Callable[[], rsa.RSAPrivateKey] = new_encryption_key

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _signer(card: EidCard) -> dict[str, str]:
        return {"ssin": card.ssin, "firstName": card.first_name, "lastName": card.last_name}

    def _wait_for(self, pki: str) -> list[x509.Certificate] | None:
        waited = 0.0
        while True:
            try:
                return [x509.load_der_x509_certificate(d) for d in self.client.get_certificate(pki)]
            except DomainError as exc:
                if exc.kind is not ErrorKind.NOT_YET_DELIVERED:
                    raise
            if waited >= self.max_wait:
                return None
            self.progress(f"certificate not yet delivered; waiting ({int(waited)} s so far)")
            self.sleep(self.poll_interval)
            waited += self.poll_interval

    def _enrol(
        self,
        card: EidCard,
        identifier: dict[str, Any],
        *,
        keystore_dir: Path,
        password: str,
        contact: dict[str, str],
        project: str | None,
        carry_over: Keystore | None,
    ) -> RequestOutcome:
        contract = self.client.generate_contract(
            {"signer": self._signer(card), "certificateIdentifier": identifier}
        )
        if not self.confirm(contract):
            raise DomainError(ErrorKind.FORBIDDEN, "the contract was not accepted; nothing was requested")
        key = self.key_factory()
        pki = public_key_identifier(key.public_key()).hex()
        name: EHealthName = parse_subject(x509.Name.from_rfc4514_string(contract["dn"]))
        store = Keystore()
        if carry_over is not None:  # previous encryption keys stay so that old messages still open
            for alias, entry in carry_over.decryption_keys().items():
                store.keys[alias] = entry
        store.keys["authentication"] = KeyEntry("authentication", key, [_placeholder(key, self.clock)])
        keystore_dir.mkdir(parents=True, exist_ok=True)
        path = keystore_dir / keystore_filename(keystore_file_stem(name), self.clock.now())
        if path.exists():
            raise DomainError(ErrorKind.CONFLICT, f"{path.name} exists already; try again in a second")
        save_keystore(path, store, password)  # the key is safe on disk before anything is sent
        body: dict[str, Any] = {
            "csr": base64.b64encode(_csr(key, contract["dn"])).decode(),
            "contract": contract,
            "contactData": contact,
        }
        if project:
            body["project"] = project
        try:
            answer = self.client.generate_certificate(
                signed_request(card, "signature", body, now=self.clock.now())
            )
        except DomainError as exc:
            if exc.kind is not ErrorKind.UNAVAILABLE:  # refused for sure: the key will never be certified
                path.unlink(missing_ok=True)
            raise
        if answer["publicKeyIdentifier"] != pki:
            raise DomainError(ErrorKind.INTERNAL, "the server answered for another key")
        self.progress(
            "request accepted"
            + (
                "; validated automatically"
                if answer["automaticallyValidated"]
                else "; waiting for an operator"
            )
        )
        chain = self._wait_for(pki)
        cert = None
        etk: tuple[str, str] | None = None
        if chain is not None:
            self._install_chain(path, password, key, chain)
            cert = chain[0]
            etk = self._ensure_etk(path, password)
        return RequestOutcome(
            keystore=path,
            public_key_identifier=pki,
            automatically_validated=bool(answer["automaticallyValidated"]),
            delivered=chain is not None,
            replaces_certificate=answer.get("replacesCertificate"),
            certificate=cert,
            etk_serial=etk[0] if etk else None,
            etk_status=etk[1] if etk else None,
        )

    @staticmethod
    def _install_chain(
        path: Path, password: str, key: rsa.RSAPrivateKey, chain: list[x509.Certificate]
    ) -> None:
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if chain[0].public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
            raise DomainError(ErrorKind.INTERNAL, "the delivered certificate is not for this keystore's key")
        store = load_keystore(path.read_bytes(), password)
        store.keys["authentication"] = KeyEntry("authentication", key, list(chain))
        for ca in chain[1:]:
            store.add_trusted(ca)
        save_keystore(path, store, password)

    # -- use cases ------------------------------------------------------------------------------------
    def request(
        self,
        card: EidCard,
        *,
        keystore_dir: Path,
        password: str,
        contact: dict[str, str],
        organization: tuple[str, str] | None = None,
        application_id: str | None = None,
        project: str | None = None,
    ) -> RequestOutcome:
        if organization is None:
            if application_id:
                raise DomainError(ErrorKind.BAD_REQUEST, "--application-id is for organisation certificates")
            identifier: dict[str, Any] = {"type": "SSIN", "value": card.ssin}
        else:
            identifier = {"type": organization[0], "value": organization[1], "applicationId": application_id}
        return self._enrol(
            card, identifier, keystore_dir=keystore_dir, password=password, contact=contact, project=project,
            carry_over=None,
        )  # fmt: skip

    def renew(
        self, card: EidCard, *, keystore: Path, password: str, contact: dict[str, str], project: str | None = None,
        keystore_dir: Path | None = None,
    ) -> RequestOutcome:  # fmt: skip
        old = load_keystore(keystore.read_bytes(), password)
        current = old.authentication().certificate
        if is_placeholder(current):
            raise DomainError(ErrorKind.CONFLICT, "this keystore's certificate is not delivered yet")
        name = parse_subject(current.subject)
        identifier: dict[str, Any] = {"type": name.id_type, "value": name.id_value}
        if name.application_id:
            identifier["applicationId"] = name.application_id
        return self._enrol(
            card, identifier, keystore_dir=keystore_dir or keystore.parent, password=password, contact=contact,
            project=project, carry_over=old,
        )  # fmt: skip

    def complete(self, keystore: Path, password: str) -> x509.Certificate | None:
        """Fetch the certificate of a pending keystore; None while it is still not delivered."""
        store = load_keystore(keystore.read_bytes(), password)
        entry = store.authentication()
        if not is_placeholder(entry.certificate):
            self._ensure_etk(keystore, password)  # a registration interrupted earlier is finished here
            return entry.certificate
        chain = self._wait_for(public_key_identifier(entry.private_key.public_key()).hex())
        if chain is None:
            return None
        self._install_chain(keystore, password, entry.private_key, chain)
        self._ensure_etk(keystore, password)
        return chain[0]

    # -- ETK (EtkRA) ----------------------------------------------------------------------------------
    def _ensure_etk(self, path: Path, password: str) -> tuple[str, str] | None:
        """Register (and, for a replacement, activate) the ETK of the keystore's authentication certificate.

        Returns (decimal serial, status), or None when the keystore already holds a key made for this
        certificate. The encryption key is stored under its serial; older keys stay in the keystore.
        """
        store = load_keystore(path.read_bytes(), password)
        auth = store.authentication()
        if any(made_for(e.certificate, auth.certificate) for e in store.decryption_keys().values()):
            return None

        def persist(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
            current = load_keystore(path.read_bytes(), password)
            current.add_encryption_key(key, cert)
            save_keystore(path, current, password)

        def forget(cert: x509.Certificate) -> None:
            current = load_keystore(path.read_bytes(), password)
            current.keys.pop(str(cert.serial_number), None)
            save_keystore(path, current, password)

        registration = register_etk(
            self.client,
            auth,
            self.clock,
            persist=persist,
            forget=forget,
            key_factory=self.encryption_key_factory,
        )
        status = "VALID_ACTIVE"
        if registration.to_be_activated:
            # After a renewal the new ETK waits; this keystore holds every older key, so activate at once.
            status = activate_etk(self.client, auth, self.clock)
        self.progress(f"ETK registered (serial {registration.serial}, {status})")
        return registration.serial, status

    def revoke(self, card: EidCard, *, public_key_identifier_hex: str, reason: str) -> None:
        contract = self.client.generate_revocation_contract(
            {
                "publicKeyIdentifier": public_key_identifier_hex,
                "revocationReason": reason,
                "signer": self._signer(card),
            }
        )
        if not self.confirm(contract):
            raise DomainError(
                ErrorKind.FORBIDDEN, "the revocation contract was not accepted; nothing was revoked"
            )
        body = {"publicKeyIdentifier": public_key_identifier_hex, "contract": contract}
        self.client.revoke(signed_request(card, "signature", body, now=self.clock.now()))

    def status(self, card: EidCard) -> list[dict[str, Any]]:
        return self.client.certificate_info(signed_request(card, "authentication", {}, now=self.clock.now()))
