"""The ETK lifecycle as a table (ARCHITECTURE rule 7), with the CertRA v2 ``EtkStatus`` names."""

from __future__ import annotations

from enum import StrEnum

from ehealth_certs.errors import DomainError, ErrorKind


class EtkState(StrEnum):
    NOT_REQUESTED = "NOT_REQUESTED"  # no row: the holder never started a registration
    IN_REQUEST = "IN_REQUEST"  # challenge sent, waiting for CompleteETKRegistration
    WAIT_FOR_ACTIVATION = "WAIT_FOR_ACTIVATION"  # a replacement ETK, until ActivateETK
    VALID_ACTIVE = "VALID_ACTIVE"  # served by the depot
    REVOKED = "REVOKED"  # auth certificate revoked, superseded, or challenge abandoned
    EXPIRED = "EXPIRED"  # the authentication certificate expired (or the challenge did)


ETK_TRANSITIONS: dict[EtkState, frozenset[EtkState]] = {
    EtkState.NOT_REQUESTED: frozenset({EtkState.IN_REQUEST}),
    EtkState.IN_REQUEST: frozenset(
        {EtkState.VALID_ACTIVE, EtkState.WAIT_FOR_ACTIVATION, EtkState.REVOKED, EtkState.EXPIRED}
    ),
    EtkState.WAIT_FOR_ACTIVATION: frozenset({EtkState.VALID_ACTIVE, EtkState.REVOKED, EtkState.EXPIRED}),
    EtkState.VALID_ACTIVE: frozenset({EtkState.REVOKED, EtkState.EXPIRED}),
    EtkState.REVOKED: frozenset(),
    EtkState.EXPIRED: frozenset(),
}

FINAL_STATES = frozenset(s for s, nxt in ETK_TRANSITIONS.items() if not nxt)


def transition(current: str, target: EtkState) -> EtkState:
    """The next state, or ``DomainError(INVALID_TRANSITION)`` when the table does not allow it."""
    state = EtkState(current)
    if target not in ETK_TRANSITIONS[state]:
        raise DomainError(ErrorKind.INVALID_TRANSITION, f"an ETK in state {state} cannot become {target}")
    return target
