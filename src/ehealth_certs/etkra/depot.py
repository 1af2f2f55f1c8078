"""The ETK depot: public, read-only lookup of VALID_ACTIVE ETKs by identifier (reference §6).

Lookups are answered from an in-memory cache, keyed by (environment, type, padded value, ApplicationID).
Every write of this process (registration, activation, revocation, expiry) clears the cache after its
commit; writes of other processes (the operator CLI) become visible when an entry is older than ``ttl``
(30 s by default, so a revocation is visible in the depot within the same minute). The expiry of an
authentication certificate is checked at every answer, cached or not.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ehealth_certs.clock import utc
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.etkra.states import EtkState
from ehealth_certs.identifiers import IDENTIFIER_TYPES, pad_identifier
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models import EtkRecord

DEFAULT_TTL = timedelta(seconds=30)
MAX_CACHE_ENTRIES = 50_000
_ALIASES = {"HUB": "EHP"}  # HUB is the deprecated name of EHP (reference §6.3)
_MAX_APPLICATION_ID = 30


@dataclass(frozen=True)
class DepotIdentifier:
    type: str
    value: str
    application_id: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"type": self.type, "value": self.value, "applicationId": self.application_id}


@dataclass(frozen=True)
class _Entry:
    identifier: DepotIdentifier
    etk: bytes
    not_after: datetime


@dataclass(frozen=True)
class DepotAnswer:
    """Exactly one of: ``etk`` (one match) or ``matches`` (several, the client picks an ApplicationID)."""

    query: DepotIdentifier
    etk: bytes | None
    matches: list[DepotIdentifier]


def normalise_identifier(id_type: str, value: str, application_id: str | None = None) -> DepotIdentifier:
    """Check the type against the table and left-pad the value with zeros (BAD_IDENTIFIER otherwise)."""
    if not isinstance(id_type, str) or not id_type.strip():
        raise DomainError(ErrorKind.BAD_IDENTIFIER, "the identifier type is missing")
    name = id_type.strip().upper()
    name = _ALIASES.get(name, name)
    if name not in IDENTIFIER_TYPES:
        raise DomainError(ErrorKind.BAD_IDENTIFIER, f"unknown identifier type {id_type.strip()[:40]!r}")
    if not isinstance(value, str) or not value.strip():
        raise DomainError(ErrorKind.BAD_IDENTIFIER, "the identifier value is missing")
    padded = pad_identifier(name, value.strip())
    app = application_id.strip() if isinstance(application_id, str) and application_id.strip() else None
    if app is not None and (len(app) > _MAX_APPLICATION_ID or not app.isprintable()):
        raise DomainError(
            ErrorKind.BAD_IDENTIFIER, "the ApplicationID is longer than 30 characters or not printable"
        )
    return DepotIdentifier(name, padded, app)


class EtkDepot:
    def __init__(
        self, rt: Runtime, *, ttl: timedelta = DEFAULT_TTL, max_entries: int = MAX_CACHE_ENTRIES
    ) -> None:
        self.rt = rt
        self.ttl = ttl
        self.max_entries = max_entries
        self._lock = threading.Lock()
        # (env, type, value) -> (loaded at, every VALID_ACTIVE ETK of that type and value)
        self._cache: dict[tuple[str, str, str], tuple[datetime, list[_Entry]]] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- lookup -----------------------------------------------------------------------------------
    def is_cached(self, environment: Environment, query: DepotIdentifier) -> bool:
        """True when ``lookup`` would not touch the database (the event loop may call it directly)."""
        now = self.rt.clock.now()
        with self._lock:
            hit = self._cache.get((environment.value, query.type, query.value))
        return hit is not None and hit[0] <= now < hit[0] + self.ttl

    def cached(self, environment: Environment, query: DepotIdentifier) -> DepotAnswer | None:
        """The answer from memory, or None when the database must be asked (``lookup``)."""
        now = self.rt.clock.now()
        with self._lock:
            hit = self._cache.get((environment.value, query.type, query.value))
        if hit is None or not hit[0] <= now < hit[0] + self.ttl:
            return None
        return self._answer(query, hit[1], now)

    def lookup(self, environment: Environment, query: DepotIdentifier) -> DepotAnswer:
        """One match: the ETK; several: the matching identifiers; none: ``DomainError(NOT_FOUND)``."""
        answer = self.cached(environment, query)
        if answer is not None:
            return answer
        now = self.rt.clock.now()
        entries = self._load(environment, query)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                # Unknown identifiers must not grow memory without bound: drop the oldest entry.
                self._cache.pop(next(iter(self._cache)))
            self._cache[(environment.value, query.type, query.value)] = (now, entries)
        return self._answer(query, entries, now)

    def lookup_many(self, environment: Environment, queries: Sequence[DepotIdentifier]) -> DepotAnswer:
        """Several search identifiers (the SOAP SearchCriteria): the union of their matches."""
        if not queries:
            raise DomainError(ErrorKind.BAD_REQUEST, "the search criteria hold no identifier")
        etks: dict[DepotIdentifier, bytes | None] = {}
        for q in queries:
            try:
                answer = self.lookup(environment, q)
            except DomainError as exc:
                if exc.kind is ErrorKind.NOT_FOUND:
                    continue
                raise
            if answer.etk is not None:
                etks[answer.matches[0]] = answer.etk
            else:
                for m in answer.matches:
                    etks.setdefault(m, None)
        if not etks:
            raise DomainError(ErrorKind.NOT_FOUND, _not_found(queries[0]))
        (ident, der), *others = etks.items()
        if not others and der is not None:
            return DepotAnswer(queries[0], der, [ident])
        return DepotAnswer(queries[0], None, sorted(etks, key=_sort_key))

    def _load(self, environment: Environment, query: DepotIdentifier) -> list[_Entry]:
        with self.rt.db.read() as s:
            rows = s.execute(
                select(EtkRecord.id_type, EtkRecord.id_value, EtkRecord.application_id, EtkRecord.der,
                       EtkRecord.not_after).where(
                    EtkRecord.environment == environment.value,
                    EtkRecord.id_type == query.type,
                    EtkRecord.id_value == query.value,
                    EtkRecord.status == EtkState.VALID_ACTIVE,
                )
            ).all()  # fmt: skip
        return [
            _Entry(DepotIdentifier(t, v, a), der, utc(not_after))
            for t, v, a, der, not_after in rows
            if der is not None
        ]

    @staticmethod
    def _answer(query: DepotIdentifier, entries: list[_Entry], now: datetime) -> DepotAnswer:
        live = [e for e in entries if now <= e.not_after]
        if query.application_id is not None:
            live = [e for e in live if e.identifier.application_id == query.application_id]
        if not live:
            raise DomainError(ErrorKind.NOT_FOUND, _not_found(query))
        if len(live) == 1:
            return DepotAnswer(query, live[0].etk, [live[0].identifier])
        return DepotAnswer(query, None, sorted((e.identifier for e in live), key=_sort_key))


def _sort_key(ident: DepotIdentifier) -> tuple[str, str, str]:
    return (ident.type, ident.value, ident.application_id or "")


def _not_found(query: DepotIdentifier) -> str:
    app = f" ApplicationID {query.application_id}" if query.application_id else ""
    return f"no active ETK for {query.type} {query.value}{app}"
