"""Settings (pydantic-settings, env prefix ``EHCERTS_``)."""

from __future__ import annotations

import logging
import secrets
from enum import StrEnum
from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ehealth_certs.errors import DomainError, ErrorKind

log = logging.getLogger(__name__)

_PLACEHOLDERS = {"", "changeme", "change-me", "password", "secret", "passphrase", "test", "admin", "xxx"}
DEV_PASSPHRASE_FILE = "ca-passphrase.dev"  # noqa: S105 - a file name, not a secret


class Mode(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EHCERTS_", extra="ignore")

    mode: Mode = Mode.DEVELOPMENT
    data_dir: Path = Path("ehcerts-data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8443
    public_base_url: str | None = None
    workers: int | None = None  # server worker processes; default one per core

    # CA key passphrase: an external source is required in production mode
    ca_passphrase: SecretStr | None = None
    ca_passphrase_file: Path | None = None

    # status services
    crl_validity_hours: int = 24 * 7
    ocsp_validity_hours: int = 24 * 4
    tsl_next_update_days: int = 30

    # limits
    max_request_bytes: int = 64 * 1024
    request_signature_max_age_seconds: int = 300

    # mail
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "ehealth-certs@localhost"

    @field_validator("crl_validity_hours")
    @classmethod
    def _crl_at_most_seven_days(cls, v: int) -> int:
        if not 1 <= v <= 24 * 7:
            raise ValueError("crl_validity_hours must be between 1 and 168 (nextUpdate <= 7 days)")
        return v

    @field_validator("ocsp_validity_hours")
    @classmethod
    def _ocsp_interval(cls, v: int) -> int:
        if not 8 <= v <= 24 * 10:
            raise ValueError("ocsp_validity_hours must be between 8 and 240 (RFC 5019 / BR)")
        return v

    @field_validator("tsl_next_update_days")
    @classmethod
    def _tsl_interval(cls, v: int) -> int:
        if not 1 <= v <= 183:
            raise ValueError("tsl_next_update_days must be between 1 and 183 (NextUpdate <= 6 months)")
        return v

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        for name in ("ca_passphrase", "smtp_password"):
            value: SecretStr | None = getattr(self, name)
            if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
                raise ValueError(f"EHCERTS_{name.upper()} is a placeholder; set a real secret")
        return self

    # derived values ---------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ehcerts.db').resolve()}"

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def eid_trust_dir(self) -> Path:
        """Trusted Citizen CA certificates (PEM or DER files)."""
        return self.data_dir / "trust" / "eid"

    @property
    def debian_weak_keys_dir(self) -> Path:
        """Operator-supplied Debian weak-key lists (CVE-2008-0166), in the format of pki/data/README.md."""
        return self.data_dir / "trust" / "debian-weak-keys"

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    def ca_key_passphrase(self) -> bytes:
        """The passphrase that encrypts CA keys at rest.

        Production mode demands an external source (``EHCERTS_CA_PASSPHRASE`` or
        ``EHCERTS_CA_PASSPHRASE_FILE``). Development mode may generate one beside the keys, with a
        warning at every start.
        """
        if self.ca_passphrase is not None:
            return self.ca_passphrase.get_secret_value().encode()
        if self.ca_passphrase_file is not None:
            try:
                value = self.ca_passphrase_file.read_text().strip()
            except OSError as exc:
                raise DomainError(
                    ErrorKind.CONFIGURATION, f"cannot read EHCERTS_CA_PASSPHRASE_FILE: {exc.strerror}"
                ) from exc
            if value.lower() in _PLACEHOLDERS:
                raise DomainError(ErrorKind.CONFIGURATION, "the CA passphrase file holds a placeholder")
            return value.encode()
        if self.mode is Mode.PRODUCTION:
            raise DomainError(
                ErrorKind.CONFIGURATION,
                "production mode needs EHCERTS_CA_PASSPHRASE or EHCERTS_CA_PASSPHRASE_FILE",
            )
        dev_file = self.pki_dir / DEV_PASSPHRASE_FILE
        if not dev_file.exists():
            dev_file.parent.mkdir(parents=True, exist_ok=True)
            dev_file.write_text(secrets.token_urlsafe(32))
            dev_file.chmod(0o600)
        log.warning(
            "DEVELOPMENT MODE: the CA key passphrase is kept beside the keys in %s; "
            "never use this data directory in production",
            dev_file,
        )
        return dev_file.read_text().strip().encode()
