"""The ETK lifecycle as a table (ARCHITECTURE rule 7), with the CertRA v2 ``EtkStatus`` names."""

from __future__ import annotations

from enum import StrEnum

from ehealth_certs.states import StateTable


class EtkState(StrEnum):
    NOT_REQUESTED = "NOT_REQUESTED"  # no row: the holder never started a registration
    IN_REQUEST = "IN_REQUEST"  # challenge sent, waiting for CompleteETKRegistration
    WAIT_FOR_ACTIVATION = "WAIT_FOR_ACTIVATION"  # a replacement ETK, until ActivateETK
    VALID_ACTIVE = "VALID_ACTIVE"  # served by the depot
    REVOKED = "REVOKED"  # auth certificate revoked, superseded, or challenge abandoned
    EXPIRED = "EXPIRED"  # the authentication certificate expired (or the challenge did)


ETKS: StateTable[EtkState] = StateTable(
    "ETK",
    EtkState,
    {
        EtkState.NOT_REQUESTED: {EtkState.IN_REQUEST},
        EtkState.IN_REQUEST: {
            EtkState.VALID_ACTIVE, EtkState.WAIT_FOR_ACTIVATION, EtkState.REVOKED, EtkState.EXPIRED,
        },
        EtkState.WAIT_FOR_ACTIVATION: {EtkState.VALID_ACTIVE, EtkState.REVOKED, EtkState.EXPIRED},
        EtkState.VALID_ACTIVE: {EtkState.REVOKED, EtkState.EXPIRED},
        EtkState.REVOKED: set(),
        EtkState.EXPIRED: set(),
    },
)  # fmt: skip

ETK_TRANSITIONS = ETKS.allowed
FINAL_STATES = ETKS.final
transition = ETKS.transition
