"""Settings: placeholder secrets refused; production mode needs an external CA passphrase source."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ehealth_certs.config import DEV_PASSPHRASE_FILE, Mode, Settings
from ehealth_certs.errors import DomainError, ErrorKind


@pytest.mark.parametrize("value", ["changeme", "password", "", "  Secret "])
def test_placeholder_passphrases_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(ca_passphrase=value)  # type: ignore[arg-type]


def test_production_mode_refuses_without_external_passphrase(tmp_path: Path) -> None:
    s = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path)
    with pytest.raises(DomainError) as err:
        s.ca_key_passphrase()
    assert err.value.kind is ErrorKind.CONFIGURATION
    assert not (tmp_path / "pki" / DEV_PASSPHRASE_FILE).exists()


def test_production_mode_reads_the_passphrase_file(tmp_path: Path) -> None:
    f = tmp_path / "pass"
    f.write_text("a real and long passphrase\n")
    s = Settings(mode=Mode.PRODUCTION, data_dir=tmp_path, ca_passphrase_file=f)
    assert s.ca_key_passphrase() == b"a real and long passphrase"


def test_development_mode_keeps_a_generated_passphrase_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = Settings(data_dir=tmp_path)
    first = s.ca_key_passphrase()
    assert len(first) >= 32 and first == s.ca_key_passphrase()
    assert (tmp_path / "pki" / DEV_PASSPHRASE_FILE).stat().st_mode & 0o077 == 0
    assert "DEVELOPMENT MODE" in caplog.text


@pytest.mark.parametrize(("name", "value"), [("crl_validity_hours", 24 * 8), ("ocsp_validity_hours", 7),
                                             ("tsl_next_update_days", 200)])  # fmt: skip
def test_status_intervals_are_bounded(name: str, value: int) -> None:
    with pytest.raises(ValidationError):
        Settings(**{name: value})  # type: ignore[arg-type]


def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'ehcerts.db').resolve()}"
