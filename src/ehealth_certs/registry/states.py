"""Version and subscription states (ARCHITECTURE rule 7: state machines are tables)."""

from __future__ import annotations

from enum import StrEnum

from ehealth_certs.errors import DomainError, ErrorKind


class VersionStatus(StrEnum):
    DRAFT = "draft"  # registered ahead of its release
    ACTIVE = "active"
    DEPRECATED = "deprecated"  # still answers; consumers should move to a newer version
    RETIRED = "retired"  # no longer answers


VERSION_TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    VersionStatus.DRAFT: frozenset({VersionStatus.ACTIVE, VersionStatus.RETIRED}),
    VersionStatus.ACTIVE: frozenset({VersionStatus.DEPRECATED, VersionStatus.RETIRED}),
    # a deprecation announced by mistake may be withdrawn
    VersionStatus.DEPRECATED: frozenset({VersionStatus.ACTIVE, VersionStatus.RETIRED}),
    VersionStatus.RETIRED: frozenset(),
}


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


def transition(current: str, target: VersionStatus) -> VersionStatus:
    """The one place that moves a version between states; refuses what the table does not allow."""
    now = VersionStatus(current)
    if target not in VERSION_TRANSITIONS[now]:
        raise DomainError(ErrorKind.INVALID_TRANSITION, f"a {now.value} version cannot become {target.value}")
    return target
