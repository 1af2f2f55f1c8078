"""`ehcerts admin audit verify` against a log edited behind the platform's back (sqlite3, as an attacker would).

Every manipulation must be detected and the report must name the entry: an edit, a removal, a reordering,
and the removal of the LAST entry, which the chain alone cannot see (the head anchor catches it).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ehealth_certs.audit.log import verify_session
from ehealth_certs.cli.main import app
from ehealth_certs.clock import FixedClock
from ehealth_certs.config import Settings
from ehealth_certs.platform import Platform
from ehealth_certs.ra.sources import import_professionals
from tests.conftest import PASSPHRASE

VERIFY_FAILED = 8


@pytest.fixture
def data_dir(
    tmp_path: Path, pki_template: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A SQLite data directory with a few dozen audit entries written by the real services."""
    data = tmp_path / "data"
    shutil.copytree(pki_template, data / "pki")
    # the CLI reads its settings from the environment; monkeypatch restores it afterwards
    monkeypatch.setenv("EHCERTS_DATA_DIR", str(data))
    monkeypatch.setenv("EHCERTS_CA_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("EHCERTS_PUBLIC_BASE_URL", "http://127.0.0.1:8443")
    p = Platform.start(Settings(), clock, create_pki=False)
    for i, ssin in enumerate(("79121430944", "69022608813", "64032764903")):
        import_professionals(p.rt, f"ssin,first_name,last_name,quality,nihii\n{ssin},A,B{i},doctor,\n".encode(),
                             operator="operator:test")  # fmt: skip
    p.close()
    yield data


def verify() -> tuple[int, object]:
    result = CliRunner().invoke(app, ["admin", "audit", "verify", "--json"])
    return result.exit_code, json.loads(result.stdout)


def sql(data: Path, statement: str, *args: object) -> None:
    with sqlite3.connect(data / "ehcerts.db") as db:
        db.execute(statement, args)


def count(data: Path) -> int:
    with sqlite3.connect(data / "ehcerts.db") as db:
        return int(db.execute("SELECT max(seq) FROM audit_events").fetchone()[0])


def test_intact_log_verifies_and_the_head_anchor_tracks_the_last_entry(data_dir: Path) -> None:
    code, out = verify()
    assert code == 0, out
    n = count(data_dir)
    assert out == {"entries": n, "status": "ok"} and n >= 12
    seq, _, digest = (data_dir / "audit-head").read_text().strip().partition(" ")
    with sqlite3.connect(data_dir / "ehcerts.db") as db:
        assert db.execute("SELECT hash FROM audit_events WHERE seq = ?", (int(seq),)).fetchone()[0] == digest
    assert int(seq) == n


def test_edited_entry_is_named(data_dir: Path) -> None:
    sql(data_dir, "UPDATE audit_events SET actor = 'operator:mallory' WHERE seq = 5")
    code, out = verify()
    assert code == VERIFY_FAILED
    assert {"seq": 5, "problem": "content does not match its hash (entry edited)"} in out
    assert min(b["seq"] for b in out) == 5


def test_removed_entry_is_named(data_dir: Path) -> None:
    sql(data_dir, "DELETE FROM audit_events WHERE seq = 7")
    code, out = verify()
    assert code == VERIFY_FAILED
    # the break is reported at the entry after the gap, naming the missing sequence number
    first = out[0]
    assert first["seq"] == 8 and "expected sequence 7" in first["problem"]


def test_reordered_entries_are_named(data_dir: Path) -> None:
    # swap entries 4 and 5 (seq is the primary key: go through a free number)
    sql(data_dir, "UPDATE audit_events SET seq = -1 WHERE seq = 4")
    sql(data_dir, "UPDATE audit_events SET seq = 4 WHERE seq = 5")
    sql(data_dir, "UPDATE audit_events SET seq = 5 WHERE seq = -1")
    code, out = verify()
    assert code == VERIFY_FAILED
    assert out[0]["seq"] == 4
    assert {b["seq"] for b in out} >= {4, 5}


def test_truncated_log_is_detected_by_the_head_anchor(data_dir: Path) -> None:
    n = count(data_dir)
    sql(data_dir, "DELETE FROM audit_events WHERE seq = ?", n)
    code, out = verify()
    assert code == VERIFY_FAILED
    assert out == [
        {
            "seq": n,
            "problem": f"missing: the head anchor names entry {n}, the log ends at {n - 1} (truncated)",
        }
    ]


def test_rewritten_last_entry_is_detected_by_the_head_anchor(data_dir: Path) -> None:
    # an attacker who edits the last entry AND recomputes its hash keeps the chain valid; only the anchor knows
    from ehealth_certs.audit.log import _entry_hash
    from ehealth_certs.storage import Database
    from ehealth_certs.storage.models import AuditEvent

    n = count(data_dir)
    db = Database(f"sqlite:///{data_dir / 'ehcerts.db'}")
    with db.transaction() as s:
        ev = s.get(AuditEvent, n)
        assert ev is not None
        ev.actor = "operator:mallory"
        ev.hash = _entry_hash(
            ev.seq, ev.at, ev.actor, ev.action, ev.object, ev.outcome, ev.details, ev.prev_hash
        )
    db.dispose()
    code, out = verify()
    assert code == VERIFY_FAILED
    assert out == [{"seq": n, "problem": "differs from the head anchor (entry replaced or chain rewritten)"}]


def test_anchor_never_moves_backwards(tmp_path: Path) -> None:
    from ehealth_certs.audit.log import read_head, write_head

    head = tmp_path / "audit-head"
    write_head(head, 10, "a" * 64)
    write_head(head, 9, "b" * 64)  # a slower process committing an older entry
    assert read_head(head) == (10, "a" * 64)
    write_head(head, 11, "c" * 64)
    assert read_head(head) == (11, "c" * 64)


def test_a_rolled_back_append_leaves_neither_an_entry_nor_a_moved_anchor(platform: Platform) -> None:
    head = platform.rt.data_dir / "audit-head"
    with platform.rt.db.transaction() as s:
        platform.rt.audit.append(s, actor="test", action="test.committed", obj="x")
    before = head.read_text()
    with pytest.raises(RuntimeError), platform.rt.db.transaction() as s:
        platform.rt.audit.append(s, actor="test", action="test.rolled-back", obj="x")
        raise RuntimeError("the use case failed after auditing")
    assert head.read_text() == before
    with platform.rt.db.transaction() as s:
        seq, digest = platform.rt.audit.append(s, actor="test", action="test.next", obj="x")
    assert head.read_text().split() == [f"{seq:020d}", digest]  # the chain goes on without a gap
    with platform.rt.db.read() as s:
        assert verify_session(s, head) == []
