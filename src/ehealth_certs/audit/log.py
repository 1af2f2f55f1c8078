"""The security audit log: every entry carries the SHA-256 of its predecessor.

Appending happens inside the caller's unit of work, so an event and the change it describes commit
together, and a failing audit write fails the operation (nothing is signed after a failed intent).
Concurrent appenders are serialised by the database: SQLite's ``BEGIN IMMEDIATE`` and, on PostgreSQL,
a transaction-level advisory lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ehealth_certs.clock import Clock
from ehealth_certs.storage.models import AuditEvent

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x65686365  # "ehce"


def _entry_hash(
    seq: int, at: datetime, actor: str, action: str, obj: str, outcome: str, details: Mapping[str, Any], prev: str
) -> str:
    canonical = json.dumps(
        [seq, at.isoformat(), actor, action, obj, outcome, details, prev],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def append(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        obj: str,
        outcome: str = "success",
        **details: Any,
    ) -> AuditEvent:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        last = session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one_or_none()
        seq = 1 if last is None else last.seq + 1
        prev = GENESIS if last is None else last.hash
        at = self._clock.now()
        clean = json.loads(json.dumps(details, default=str))
        event = AuditEvent(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            object=obj,
            outcome=outcome,
            details=clean,
            prev_hash=prev,
            hash=_entry_hash(seq, at, actor, action, obj, outcome, clean, prev),
        )
        session.add(event)
        session.flush()
        return event


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.problem}"


def verify_chain(events: Iterable[AuditEvent]) -> list[ChainBreak]:
    """Check sequence continuity, links and hashes; name the first entry of each break."""
    breaks: list[ChainBreak] = []
    expected_seq = 1
    prev = GENESIS
    for ev in events:
        if ev.seq != expected_seq:
            what = "missing or reordered entry" if ev.seq > expected_seq else "duplicated or reordered entry"
            breaks.append(ChainBreak(ev.seq, f"{what} (expected sequence {expected_seq})"))
        if ev.prev_hash != prev:
            breaks.append(ChainBreak(ev.seq, "link to the previous entry broken (removed, reordered or edited)"))
        recomputed = _entry_hash(
            ev.seq, ev.at, ev.actor, ev.action, ev.object, ev.outcome, ev.details, ev.prev_hash
        )
        if recomputed != ev.hash:
            breaks.append(ChainBreak(ev.seq, "content does not match its hash (entry edited)"))
        prev = ev.hash
        expected_seq = ev.seq + 1
    return breaks


def verify_session(session: Session) -> list[ChainBreak]:
    return verify_chain(session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())
