"""The composition root: settings, clock, database, PKI material and services, built once per process.

The web app, the CLI's operator commands and the tests all start from ``Runtime.start(settings)``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from ehealth_certs.audit import AuditLog
from ehealth_certs.clock import Clock, SystemClock
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError
from ehealth_certs.pki.ceremony import EnvironmentPki
from ehealth_certs.pki.issuer import CaKey
from ehealth_certs.pki.keys import DebianWeakKeys, load_debian_weak_keys
from ehealth_certs.pkistore import ROLES, PkiStore
from ehealth_certs.storage import Database, migrate
from ehealth_certs.storage.models import Issuer

log = logging.getLogger(__name__)


def _ski_hex(cert: x509.Certificate) -> str:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


def _key_hash(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    from asn1crypto import keys

    bits = keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
    return hashlib.sha1(bits).hexdigest()  # noqa: S324  (RFC 6960 CertID uses SHA-1)


@dataclass
class EnvironmentRuntime:
    environment: Environment
    pki: EnvironmentPki
    issuer_ids: dict[str, int] = field(default_factory=dict)  # role -> issuers.id

    @property
    def issuing(self) -> CaKey:
        return self.pki.issuing

    def chain(self) -> list[x509.Certificate]:
        """The chain handed to holders: issuing CA (the root is not included)."""
        return [self.pki.issuing.certificate]


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    audit: AuditLog
    environments: dict[Environment, EnvironmentRuntime]
    debian_weak_keys: DebianWeakKeys = field(default_factory=DebianWeakKeys)

    @classmethod
    def start(cls, settings: Settings, clock: Clock | None = None, *, create_pki: bool = True) -> Runtime:
        clock = clock or SystemClock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        db.check_durability()
        migrate(db)
        audit = AuditLog(clock, head_path=settings.data_dir / "audit-head")
        store = PkiStore(settings.pki_dir, settings.ca_key_passphrase())
        envs: dict[Environment, EnvironmentRuntime] = {}
        for env in Environment:
            if not store.exists(env):
                if not create_pki:
                    from ehealth_certs.errors import DomainError, ErrorKind

                    raise DomainError(ErrorKind.CONFIGURATION, f"no {env} PKI: run `ehcerts init` first")
                store.create(env, now=clock.now(), base_url=settings.base_url)
                log.info("created the %s PKI in %s", env, store.env_dir(env))
            envs[env] = EnvironmentRuntime(env, store.load(env))
        rt = cls(
            settings=settings,
            clock=clock,
            db=db,
            audit=audit,
            environments=envs,
            debian_weak_keys=load_debian_weak_keys(settings.debian_weak_keys_dir),
        )
        rt._register_issuers()
        return rt

    def _register_issuers(self) -> None:
        with self.db.transaction() as s:
            for env, er in self.environments.items():
                for role in ROLES:
                    cert: x509.Certificate = getattr(er.pki, role).certificate
                    ski = _ski_hex(cert)
                    row = s.execute(
                        select(Issuer).where(
                            Issuer.environment == env.value, Issuer.role == role, Issuer.ski == ski
                        )
                    ).scalar_one_or_none()
                    if row is None:
                        name_hash = hashlib.sha1(cert.subject.public_bytes()).hexdigest()  # noqa: S324
                        row = Issuer(
                            environment=env.value,
                            role=role,
                            subject=cert.subject.rfc4514_string(),
                            ski=ski,
                            name_hash_sha1=name_hash,
                            key_hash_sha1=_key_hash(cert),
                            certificate_der=cert.public_bytes(serialization.Encoding.DER),
                            not_before=cert.not_valid_before_utc,
                            not_after=cert.not_valid_after_utc,
                            status="active",
                            status_since=self.clock.now(),
                        )
                        s.add(row)
                        s.flush()
                        self.audit.append(
                            s,
                            actor="system",
                            action="ca.registered",
                            obj=f"{env.value}/{role}",
                            subject=row.subject,
                            ski=ski,
                        )
                    er.issuer_ids[role] = row.id

    def audit_auth_failure(self, obj: str, exc: DomainError) -> None:
        """Audit a refused authentication in a transaction of its own, so that it survives the refusal."""
        with self.db.transaction() as s:
            self.audit.append(
                s, actor="anonymous", action="auth.failed", obj=obj, outcome="failure",
                reason=exc.kind.value, detail=exc.detail,
            )  # fmt: skip

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def close(self) -> None:
        self.db.dispose()
