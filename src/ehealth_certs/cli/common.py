"""What every command shares: errors to exit codes (mapped once), secrets from env or prompt, output."""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer

from ehealth_certs.errors import DomainError, ErrorKind

P = ParamSpec("P")
R = TypeVar("R")

EXIT_CODES: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 3,
    ErrorKind.BAD_CSR: 3,
    ErrorKind.WEAK_KEY: 3,
    ErrorKind.BAD_IDENTIFIER: 3,
    ErrorKind.BAD_SIGNATURE: 3,
    ErrorKind.CONTRACT_MISMATCH: 3,
    ErrorKind.PAYLOAD_TOO_LARGE: 3,
    ErrorKind.CHALLENGE_INVALID: 3,
    ErrorKind.UNAUTHENTICATED: 4,
    ErrorKind.UNTRUSTED_SIGNER: 4,
    ErrorKind.NOT_ENTITLED: 4,
    ErrorKind.FORBIDDEN: 4,
    ErrorKind.EXPIRED: 4,
    ErrorKind.NOT_FOUND: 5,
    ErrorKind.CONFLICT: 6,
    ErrorKind.RENEWAL_NOT_OPEN: 6,
    ErrorKind.INVALID_TRANSITION: 6,
    ErrorKind.REPLAY: 6,
    ErrorKind.NOT_YET_DELIVERED: 6,
    ErrorKind.CONFIGURATION: 7,
    ErrorKind.UNAVAILABLE: 7,
    # sealed messages (docs/etee.md); unseal adds 11 (invalid data) and 12 (sender not trusted)
    ErrorKind.MALFORMED_MESSAGE: 10,
    ErrorKind.NO_DECRYPTION_KEY: 13,
}


def exit_code(kind: ErrorKind) -> int:
    return EXIT_CODES.get(kind, 1)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """One line on stderr and a non-zero exit code for every DomainError; nothing else leaks."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DomainError as exc:
            typer.echo(f"error: {exc.detail} [{exc.kind.value}]", err=True)
            raise typer.Exit(exit_code(exc.kind)) from None
        except OSError as exc:
            typer.echo(f"error: {exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})", err=True)
            raise typer.Exit(1) from None

    return wrapper


def secret(env_name: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from the environment, or typed at a hidden prompt; never from a flag."""
    value = os.environ.get(env_name)
    if value:
        return value
    if not sys.stdin.isatty():
        raise DomainError(ErrorKind.BAD_REQUEST, f"{env_name} is not set and there is no terminal to ask")
    first = getpass.getpass(f"{prompt}: ")
    if confirm and getpass.getpass(f"{prompt} (again): ") != first:
        raise DomainError(ErrorKind.BAD_REQUEST, "the two entries differ")
    if not first:
        raise DomainError(ErrorKind.BAD_REQUEST, f"{prompt} is empty")
    return first


def emit(as_json: bool, data: Any, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(human)


def apply_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["EHCERTS_DATA_DIR"] = str(data_dir)


def operator_name(explicit: str | None) -> str:
    return explicit or os.environ.get("EHCERTS_OPERATOR") or f"operator:{getpass.getuser()}"
