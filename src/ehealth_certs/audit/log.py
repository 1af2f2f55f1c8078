"""The security audit log: every entry carries the SHA-256 of its predecessor.

Appending happens inside the caller's unit of work, so an event and the change it describes commit
together, and a failing audit write fails the operation (nothing is signed after a failed intent).
Concurrent appenders are serialised by the database: SQLite's ``BEGIN IMMEDIATE`` and, on PostgreSQL,
a transaction-level advisory lock.

The chain alone cannot reveal that its LAST entries were removed (a shorter chain is still a valid chain).
So after every commit that appended, the newest ``seq`` and hash are written to a small head
anchor file outside the database; ``verify_session`` compares the log with it. The anchor only ever moves
forward (several processes append: server and operator CLI), under an exclusive ``flock``. It is
tamper-evident against someone who edits the database alone; an attacker who controls the data directory
can rewrite both, which is why the anchor should also be copied off-box with backups.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from ehealth_certs.clock import Clock
from ehealth_certs.storage.db import after_commit
from ehealth_certs.storage.models import AuditEvent, table_of

GENESIS = "0" * 64
_PG_LOCK_KEY = 0x65686365  # "ehce"


def _entry_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    obj: str,
    outcome: str,
    details: Mapping[str, Any],
    prev: str,
) -> str:
    canonical = json.dumps(
        [seq, at.isoformat(), actor, action, obj, outcome, details, prev],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_HEAD_KEY = "ehcerts_audit_head"
_HEAD_WIDTH = 20  # fixed-width record: rewritten in place, never truncated


def write_head(path: Path, seq: int, entry_hash: str) -> None:
    """Move the head anchor forward to ``seq`` (never backwards)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        current = _parse_head(os.pread(fd, 128, 0))
        if current is None or seq > current[0]:
            # No fsync: the anchor is written after the database commit, so after a power loss it can only
            # lag behind the log (never ahead of it), which is never a false alarm; it saves one fsync per
            # transaction on the issuance path.
            os.pwrite(fd, f"{seq:0{_HEAD_WIDTH}d} {entry_hash}\n".encode(), 0)
    finally:
        os.close(fd)  # also releases the lock


def read_head(path: Path) -> tuple[int, str] | None:
    try:
        return _parse_head(path.read_bytes())
    except FileNotFoundError:
        return None


def _parse_head(raw: bytes) -> tuple[int, str] | None:
    parts = raw.decode("ascii", errors="replace").split()
    if len(parts) != 2 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1]


_TAIL_KEY = "ehcerts.audit.tail"
_TAIL = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
_INSERT = insert(table_of(AuditEvent))


class AuditLog:
    def __init__(self, clock: Clock, head_path: Path | None = None) -> None:
        self._clock = clock
        self.head_path = head_path

    def append(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        obj: str,
        outcome: str = "success",
        **details: Any,
    ) -> tuple[int, str]:
        """Append one event in the caller's transaction; returns its (seq, hash). Written with Core
        statements on the session's connection (events reference no other row, so they need no flush)."""
        conn = session.connection()
        # Sessions live for one transaction (``Database.transaction()``), so the tail read by its first
        # append stays valid for its later appends.
        tail: tuple[int, str] | None = session.info.get(_TAIL_KEY)
        if tail is None:
            # First append of this transaction: take the log's lock (SQLite: the write transaction already
            # holds it), then read the tail once.
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            row = conn.execute(_TAIL).first()
            tail = (0, GENESIS) if row is None else (int(row[0]), str(row[1]))
        seq, prev = tail[0] + 1, tail[1]
        at = self._clock.now()
        clean = json.loads(json.dumps(details, default=str))
        entry_hash = _entry_hash(seq, at, actor, action, obj, outcome, clean, prev)
        conn.execute(
            _INSERT,
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "object": obj,
                "outcome": outcome,
                "details": clean,
                "prev_hash": prev,
                "hash": entry_hash,
            },
        )
        session.info[_TAIL_KEY] = (seq, entry_hash)
        if self.head_path is not None:
            head_path = self.head_path
            after_commit(session, _HEAD_KEY, lambda: write_head(head_path, seq, entry_hash))
        return seq, entry_hash


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
            breaks.append(
                ChainBreak(ev.seq, "link to the previous entry broken (removed, reordered or edited)")
            )
        recomputed = _entry_hash(
            ev.seq, ev.at, ev.actor, ev.action, ev.object, ev.outcome, ev.details, ev.prev_hash
        )
        if recomputed != ev.hash:
            breaks.append(ChainBreak(ev.seq, "content does not match its hash (entry edited)"))
        prev = ev.hash
        expected_seq = ev.seq + 1
    return breaks


def verify_session(session: Session, head_path: Path | None = None) -> list[ChainBreak]:
    """Verify the chain and, with ``head_path``, that nothing after the anchored head entry was cut off."""
    # the anchor is read before the database: it can only lag behind a snapshot taken after it
    head = read_head(head_path) if head_path is not None else None
    events = list(session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())
    breaks = verify_chain(events)
    if head is not None:
        seq, entry_hash = head
        by_seq = {ev.seq: ev for ev in events}
        anchored = by_seq.get(seq)
        if anchored is None:
            last = events[-1].seq if events else 0
            breaks.append(
                ChainBreak(
                    seq, f"missing: the head anchor names entry {seq}, the log ends at {last} (truncated)"
                )
            )
        elif anchored.hash != entry_hash:
            breaks.append(ChainBreak(seq, "differs from the head anchor (entry replaced or chain rewritten)"))
    return breaks
