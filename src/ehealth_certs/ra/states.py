"""State machines as tables (ARCHITECTURE rule 7)."""

from __future__ import annotations

from enum import StrEnum

from ehealth_certs.states import StateTable


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


REQUESTS: StateTable[RequestState] = StateTable(
    "request",
    RequestState,
    {
        RequestState.PENDING_APPROVAL: {RequestState.APPROVED, RequestState.REFUSED},
        # an APPROVED request whose signing attempt was abandoned stays APPROVED and is issued again
        RequestState.APPROVED: {RequestState.ISSUED},
        RequestState.ISSUED: set(),
        RequestState.REFUSED: set(),
    },
)

CERTIFICATES: StateTable[CertState] = StateTable(
    "certificate",
    CertState,
    {
        CertState.SIGNING: {CertState.ISSUED, CertState.REVOKED},
        CertState.ISSUED: {CertState.REVOKED},
        CertState.REVOKED: set(),
    },
)

transition_request = REQUESTS.transition
transition_cert = CERTIFICATES.transition
