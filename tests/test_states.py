"""The one state-table mechanism: complete tables only, and nothing moves that the table does not allow."""

from __future__ import annotations

from enum import StrEnum

import pytest

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.etkra.states import ETKS
from ehealth_certs.notify.outbox import MAIL
from ehealth_certs.ra.states import CERTIFICATES, REQUESTS
from ehealth_certs.registry.states import SUBSCRIPTIONS, VERSIONS
from ehealth_certs.states import StateTable


class Light(StrEnum):
    RED = "red"
    GREEN = "green"


def test_an_incomplete_table_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="no row"):
        StateTable("light", Light, {Light.RED: {Light.GREEN}})


def test_a_table_refuses_unknown_targets() -> None:
    with pytest.raises(ValueError, match="unknown states"):
        StateTable("light", Light, {Light.RED: {"blue"}, Light.GREEN: set()})  # type: ignore[dict-item]


@pytest.mark.parametrize("table", [REQUESTS, CERTIFICATES, ETKS, VERSIONS, SUBSCRIPTIONS, MAIL])
def test_every_lifecycle_allows_exactly_its_table(table: StateTable) -> None:  # type: ignore[type-arg]
    for source in table.states:
        for target in table.states:
            if target in table.allowed[source]:
                assert table.transition(source.value, target) is target
            else:
                with pytest.raises(DomainError) as err:
                    table.transition(source.value, target)
                assert err.value.kind is ErrorKind.INVALID_TRANSITION


def test_final_states() -> None:
    assert {s.value for s in REQUESTS.final} == {"ISSUED", "REFUSED"}
    assert {s.value for s in CERTIFICATES.final} == {"revoked"}
    assert {s.value for s in ETKS.final} == {"REVOKED", "EXPIRED"}
    assert {s.value for s in VERSIONS.final} == {"retired"}
    assert {s.value for s in MAIL.final} == {"sent"}
    assert SUBSCRIPTIONS.final == frozenset()  # one may always subscribe again (double opt-in again)
