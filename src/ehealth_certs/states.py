"""State machines as tables (ARCHITECTURE rule 7): the one mechanism every lifecycle is declared with.

A ``StateTable`` is validated when it is built (every state has a row, every target is a state), and its
``transition`` is the only way a stored status moves: it refuses whatever the table does not allow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from ehealth_certs.errors import DomainError, ErrorKind

S = TypeVar("S", bound=StrEnum)


class StateTable(Generic[S]):
    def __init__(self, what: str, states: type[S], allowed: Mapping[S, Iterable[S]]) -> None:
        missing = set(states) - set(allowed)
        if missing:
            raise ValueError(f"{what} state table has no row for {sorted(missing)}")
        self.what = what
        self.states = states
        self.allowed: dict[S, frozenset[S]] = {s: frozenset(allowed[s]) for s in states}
        for source, targets in self.allowed.items():
            stray = {t for t in targets if not isinstance(t, states)}
            if stray:
                raise ValueError(f"{what} state table: {source} leads to unknown states {stray}")
        self.final: frozenset[S] = frozenset(s for s, targets in self.allowed.items() if not targets)

    def transition(self, current: str, target: S) -> S:
        """The next state, or ``DomainError(INVALID_TRANSITION)`` when the table does not allow it."""
        state = self.states(current)
        if target not in self.allowed[state]:
            raise DomainError(
                ErrorKind.INVALID_TRANSITION,
                f"a {self.what} in state {state.value} cannot become {target.value}",
            )
        return target
