"""Typed domain errors. No HTTP status codes here: web/errors.py, the CLI and the SOAP adapter map kinds."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    # input
    BAD_REQUEST = "bad-request"
    BAD_CSR = "bad-csr"
    WEAK_KEY = "weak-key"
    BAD_IDENTIFIER = "bad-identifier"
    BAD_SIGNATURE = "bad-signature"
    CONTRACT_MISMATCH = "contract-mismatch"
    PAYLOAD_TOO_LARGE = "payload-too-large"
    MALFORMED_MESSAGE = "malformed-message"
    NO_DECRYPTION_KEY = "no-decryption-key"
    # authentication / authorisation
    UNAUTHENTICATED = "unauthenticated"
    UNTRUSTED_SIGNER = "untrusted-signer"
    NOT_ENTITLED = "not-entitled"
    FORBIDDEN = "forbidden"
    REPLAY = "replay"
    # state
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"
    NOT_YET_DELIVERED = "not-yet-delivered"
    RENEWAL_NOT_OPEN = "renewal-not-open"
    INVALID_TRANSITION = "invalid-transition"
    EXPIRED = "expired"
    CHALLENGE_INVALID = "challenge-invalid"
    # platform
    LINT_FAILURE = "lint-failure"
    CONFIGURATION = "configuration"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class DomainError(Exception):
    """An error the user can act on. ``detail`` is safe to show; ``params`` carries structured data."""

    def __init__(self, kind: ErrorKind, detail: str, **params: Any) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        self.params: Mapping[str, Any] = params

    def __repr__(self) -> str:
        return f"DomainError({self.kind!s}, {self.detail!r})"
