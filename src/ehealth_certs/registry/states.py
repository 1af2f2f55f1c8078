"""Version and subscription states (ARCHITECTURE rule 7: state machines are tables)."""

from __future__ import annotations

from enum import StrEnum

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.states import StateTable


class VersionStatus(StrEnum):
    DRAFT = "draft"  # registered ahead of its release
    ACTIVE = "active"
    DEPRECATED = "deprecated"  # still answers; consumers should move to a newer version
    RETIRED = "retired"  # no longer answers


class SubscriptionStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


def version_status(value: str) -> VersionStatus:
    try:
        return VersionStatus(value)
    except ValueError as exc:
        allowed = ", ".join(s.value for s in VersionStatus)
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"unknown version status {value!r} (one of {allowed})"
        ) from exc


VERSIONS: StateTable[VersionStatus] = StateTable(
    "version",
    VersionStatus,
    {
        VersionStatus.DRAFT: {VersionStatus.ACTIVE, VersionStatus.RETIRED},
        VersionStatus.ACTIVE: {VersionStatus.DEPRECATED, VersionStatus.RETIRED},
        # a deprecation announced by mistake may be withdrawn
        VersionStatus.DEPRECATED: {VersionStatus.ACTIVE, VersionStatus.RETIRED},
        VersionStatus.RETIRED: set(),
    },
)

SUBSCRIPTIONS: StateTable[SubscriptionStatus] = StateTable(
    "subscription",
    SubscriptionStatus,
    {
        # PENDING -> PENDING: the confirmation mail is sent again after a while
        SubscriptionStatus.PENDING: {
            SubscriptionStatus.PENDING, SubscriptionStatus.CONFIRMED, SubscriptionStatus.UNSUBSCRIBED,
        },
        SubscriptionStatus.CONFIRMED: {SubscriptionStatus.UNSUBSCRIBED},
        SubscriptionStatus.UNSUBSCRIBED: {SubscriptionStatus.PENDING},  # subscribing again, double opt-in again
    },
)  # fmt: skip

VERSION_TRANSITIONS = VERSIONS.allowed
transition = VERSIONS.transition
