"""The platform's own PKI material on disk: created once by the ceremony, loaded at every start.

Layout: ``<data_dir>/pki/<environment>/<role>.crt.pem`` and ``<role>.key.pem`` (PKCS#8, encrypted with the
configured passphrase). An environment is written into a temporary folder and renamed into place, so a
crash during the ceremony never leaves half an environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.ceremony import EnvironmentPki, create_environment_pki
from ehealth_certs.pki.issuer import CaKey
from ehealth_certs.pki.signing import SoftwareSigner

ROLES = ("root", "issuing", "ocsp", "etkra", "tsl")


@dataclass(frozen=True)
class PkiStore:
    directory: Path
    passphrase: bytes

    def env_dir(self, environment: Environment) -> Path:
        return self.directory / environment.value

    def exists(self, environment: Environment) -> bool:
        return (self.env_dir(environment) / "issuing.crt.pem").exists()

    def create(self, environment: Environment, *, now: datetime, base_url: str) -> EnvironmentPki:
        """Run the ceremony for one environment (refuses if it already exists)."""
        target = self.env_dir(environment)
        if target.exists():
            raise DomainError(ErrorKind.CONFLICT, f"the {environment} PKI already exists in {target}")
        material = create_environment_pki(environment, now=now, base_url=base_url)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{environment.value}-", dir=self.directory))
        try:
            for role in ROLES:
                ca: CaKey = getattr(material, role)
                if not isinstance(ca.signer, SoftwareSigner):
                    raise DomainError(ErrorKind.CONFIGURATION, "the ceremony must return software signers")
                ca.signer.write_encrypted(tmp / f"{role}.key.pem", self.passphrase)
                cert_path = tmp / f"{role}.crt.pem"
                cert_path.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return material

    def load(self, environment: Environment) -> EnvironmentPki:
        folder = self.env_dir(environment)
        parts: dict[str, CaKey] = {}
        for role in ROLES:
            try:
                cert = x509.load_pem_x509_certificate((folder / f"{role}.crt.pem").read_bytes())
            except FileNotFoundError as exc:
                raise DomainError(
                    ErrorKind.CONFIGURATION, f"{environment} PKI incomplete: {role}.crt.pem missing"
                ) from exc
            signer = SoftwareSigner.from_encrypted_file(folder / f"{role}.key.pem", self.passphrase)
            spki = serialization.PublicFormat.SubjectPublicKeyInfo
            if signer.public_key.public_bytes(
                serialization.Encoding.DER, spki
            ) != cert.public_key().public_bytes(serialization.Encoding.DER, spki):
                raise DomainError(
                    ErrorKind.CONFIGURATION, f"{environment} {role}: key does not match certificate"
                )
            parts[role] = CaKey(certificate=cert, signer=signer)
        return EnvironmentPki(**parts)
