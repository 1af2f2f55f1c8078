"""The Citizen CAs this platform trusts for eID signatures: PEM or DER files in a directory.

Operators drop the real Belgian Citizen CA certificates there; ``ehcerts dev make-eid`` adds its test CA.
The directory is read again when it changes, so a running server sees a newly trusted CA.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography import x509


def load_certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


class EidTrust:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, float], ...] | None = None
        self._cas: list[x509.Certificate] = []

    def _current_stamp(self) -> tuple[tuple[str, float], ...]:
        if not self.directory.is_dir():
            return ()
        return tuple(sorted((p.name, p.stat().st_mtime) for p in self.directory.iterdir() if p.is_file()))

    def citizen_cas(self) -> list[x509.Certificate]:
        stamp = self._current_stamp()
        with self._lock:
            if stamp != self._stamp:
                cas: list[x509.Certificate] = []
                for name, _ in stamp:
                    if name.endswith((".pem", ".crt", ".cer", ".der")):
                        cas.extend(load_certificates(self.directory / name))
                self._cas, self._stamp = cas, stamp
            return list(self._cas)

    def add(self, name: str, certificate_pem: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.pem"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(certificate_pem)
            tmp.rename(path)
        return path
