#!/usr/bin/env python3
"""The two set-up commands of ehealth-certs, for a fresh machine with only python3 and pip.

    python3 dev.py serve   # create .venv, install, create the development PKI on first start, serve
    python3 dev.py test    # create .venv, install (with the external judges), ruff, mypy, pytest

Anything after the command is passed on (``serve --port 9000``, ``test -k ocsp``).
The virtual environment is reinstalled only when pyproject.toml or constraints.txt changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".ehcerts-installed"

# Debian packages the test suite uses as external judges (openssl, keytool, xmlsec1) and peers (wrk, cfssl).
DEBIAN_TEST_PACKAGES = {
    "openssl": "openssl",
    "keytool": "default-jre-headless",
    "xmlsec1": "xmlsec1",
}
DEBIAN_BUILD_PACKAGES = ["libxmlsec1-dev", "pkg-config"]  # python-xmlsec builds against them if no wheel


def _run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def _ensure_venv(extras: str) -> None:
    wanted = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes() + extras.encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "install", "--upgrade", "pip==25.3"])
    target = f".[{extras}]" if extras else "."
    # constraints.txt pins every transitive dependency to the versions the suite was last run with
    _run([*pip, "install", "-c", "constraints.txt", "-e", target], cwd=ROOT)
    STAMP.write_text(wanted)


def _ensure_debian_packages() -> None:
    missing = [pkg for tool, pkg in DEBIAN_TEST_PACKAGES.items() if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"dev.py: missing tools {missing}; install them with apt-get (needs root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    _run(
        ["apt-get", "install", "-y", "-q", *missing, *DEBIAN_BUILD_PACKAGES],
        env=env,
        stdout=subprocess.DEVNULL,
    )


def serve(args: list[str]) -> int:
    _ensure_venv("")
    return subprocess.call([str(BIN / "ehcerts"), "serve", *args])


def test(args: list[str]) -> int:
    _ensure_debian_packages()
    _ensure_venv("dev")
    steps = [
        [str(BIN / "ruff"), "check", "src", "tests", "bench", "dev.py"],
        [str(BIN / "mypy")],
        [str(BIN / "python"), "-m", "pytest", "-n", "2", *args],
    ]
    for step in steps:
        print("+", " ".join(step), flush=True)
        rc = subprocess.call(step, cwd=ROOT)
        if rc != 0:
            return rc
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"serve", "test"}:
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    return serve(rest) if command == "serve" else test(rest)


if __name__ == "__main__":
    sys.exit(main())
