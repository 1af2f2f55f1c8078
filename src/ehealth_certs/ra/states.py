"""State machines as tables (ARCHITECTURE rule 7)."""

from __future__ import annotations

from enum import StrEnum

from ehealth_certs.errors import DomainError, ErrorKind


class RequestState(StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    ISSUED = "ISSUED"
    REFUSED = "REFUSED"


class CertState(StrEnum):
    SIGNING = "signing"  # intent recorded, signature may or may not exist
    ISSUED = "issued"
    REVOKED = "revoked"


class CertificateStatus(StrEnum):
    """CertRA v2 ``CertificateStatusType`` as seen by the holder."""

    IN_PROGRESS = "IN_PROGRESS"
    VALID_ACTIVE = "VALID_ACTIVE"
    REFUSED = "REFUSED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


REQUEST_TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.PENDING_APPROVAL: frozenset({RequestState.APPROVED, RequestState.REFUSED}),
    # an APPROVED request whose signing attempt was abandoned stays APPROVED and is issued again
    RequestState.APPROVED: frozenset({RequestState.ISSUED}),
    RequestState.ISSUED: frozenset(),
    RequestState.REFUSED: frozenset(),
}

CERT_TRANSITIONS: dict[CertState, frozenset[CertState]] = {
    CertState.SIGNING: frozenset({CertState.ISSUED, CertState.REVOKED}),
    CertState.ISSUED: frozenset({CertState.REVOKED}),
    CertState.REVOKED: frozenset(),
}


def transition_request(current: str, target: RequestState) -> RequestState:
    state = RequestState(current)
    if target not in REQUEST_TRANSITIONS[state]:
        raise DomainError(ErrorKind.INVALID_TRANSITION, f"a request in state {state} cannot become {target}")
    return target


def transition_cert(current: str, target: CertState) -> CertState:
    state = CertState(current)
    if target not in CERT_TRANSITIONS[state]:
        raise DomainError(
            ErrorKind.INVALID_TRANSITION, f"a certificate in state {state} cannot become {target}"
        )
    return target
