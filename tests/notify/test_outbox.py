"""The outbox against a real SMTP server: outages, backoff with the injected clock, permanent refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from ehealth_certs.clock import FixedClock
from ehealth_certs.config import Settings
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.notify import RetryPolicy, SmtpTransport
from ehealth_certs.platform import Platform
from ehealth_certs.storage.models.registry import MailMessage
from tests.notify.conftest import wire
from tests.notify.smtp_server import SmtpServer

MINUTE = timedelta(minutes=1)


def _enqueue(platform: Platform, *recipients: str) -> None:
    with platform.rt.db.transaction() as s:
        for i, to in enumerate(recipients):
            platform.mail.enqueue(
                s,
                to=to,
                subject=f"notice {i}",
                body=f"body {i} for {to}",
                topic="test",
                headers={"List-Unsubscribe": f"<http://127.0.0.1:8443/u?token={i}>"},
            )


def _rows(platform: Platform) -> list[MailMessage]:
    with platform.rt.db.read() as s:
        return list(s.scalars(select(MailMessage).order_by(MailMessage.id)))


def test_backoff_doubles_and_is_capped() -> None:
    p = RetryPolicy()
    assert [p.delay(n) for n in (1, 2, 3, 4)] == [MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE]
    assert p.delay(7) == timedelta(hours=1) and p.delay(10**6) == timedelta(hours=1)


def test_transport_from_settings(settings: Settings) -> None:
    s = settings.model_copy(
        update={
            "smtp_host": "mail.example.be",
            "smtp_port": 2525,
            "smtp_starttls": True,
            "smtp_username": "relay",
        }
    )
    t = SmtpTransport.from_settings(s)
    assert (t.host, t.port, t.starttls, t.username, t.password) == (
        "mail.example.be",
        2525,
        True,
        "relay",
        None,
    )


def test_outage_loses_nothing_and_delivers_exactly_once(
    platform: Platform, smtp_down: SmtpServer, clock: FixedClock
) -> None:
    wire(platform, smtp_down)
    recipients = ["a@example.be", "b@example.be", "c@example.be"]
    _enqueue(platform, *recipients)
    start = clock.now()

    report = platform.mail.deliver()
    assert (report.attempted, report.sent, report.deferred) == (3, 0, 3)
    assert "cannot reach the mail server" in report.errors[0]
    for row in _rows(platform):
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, start + MINUTE)
        assert row.last_error and "cannot reach" in row.last_error
    assert platform.mail.deliver().attempted == 0  # not due yet: the clock has not moved

    clock.advance(MINUTE)
    platform.mail.deliver()
    assert {(r.attempts, r.next_attempt_at) for r in _rows(platform)} == {(2, start + 3 * MINUTE)}

    smtp_down.start()  # the mail server is back
    clock.advance(MINUTE)
    assert platform.mail.deliver().attempted == 0  # backoff still running
    clock.advance(MINUTE)
    report = platform.mail.deliver()
    assert (report.attempted, report.sent) == (3, 3)
    clock.advance(timedelta(days=1))
    assert platform.mail.deliver().attempted == 0
    got = smtp_down.recorder.received
    assert sorted(r.rcpt_tos[0] for r in got) == recipients  # each exactly once
    assert len({r.message["Message-ID"] for r in got}) == 3
    first = next(r for r in got if r.rcpt_tos == ["a@example.be"])
    assert first.message["Subject"] == "notice 0" and first.body.strip() == "body 0 for a@example.be"
    assert first.message["List-Unsubscribe"] == "<http://127.0.0.1:8443/u?token=0>"
    for row in _rows(platform):
        assert (row.status, row.attempts, row.sent_at, row.body) == (
            "sent",
            3,
            clock.now() - timedelta(days=1),
            "",
        )


def test_permanent_refusal_fails_after_n_attempts_without_blocking_others(
    platform: Platform, smtp: SmtpServer, clock: FixedClock
) -> None:
    wire(platform, smtp)
    platform.mail.policy = RetryPolicy(max_attempts=3)
    smtp.recorder.refuse["gone@example.be"] = "550 5.1.1 mailbox unavailable"
    _enqueue(platform, "gone@example.be", "ok@example.be")
    report = platform.mail.deliver()
    assert (report.sent, report.deferred, report.failed) == (1, 1, 0)
    assert [r.rcpt_tos for r in smtp.recorder.received] == [["ok@example.be"]]
    for _ in range(2):
        clock.advance(timedelta(hours=1))
        platform.mail.deliver()
    gone = _rows(platform)[0]
    assert (gone.status, gone.attempts) == ("failed", 3)
    assert gone.last_error is not None and "550" in gone.last_error
    clock.advance(timedelta(days=1))
    assert platform.mail.deliver().attempted == 0  # a failed message is left alone
    assert [m["status"] for m in platform.mail.messages(status="failed")] == ["failed"]

    # the operator fixes the cause and queues it again
    del smtp.recorder.refuse["gone@example.be"]
    platform.mail.requeue(gone.id, operator="operator:alice")
    assert platform.mail.deliver().sent == 1
    assert [r.rcpt_tos for r in smtp.recorder.received][-1] == ["gone@example.be"]
    with pytest.raises(DomainError) as e:
        platform.mail.requeue(gone.id, operator="operator:alice")
    assert e.value.kind is ErrorKind.INVALID_TRANSITION


def test_temporary_refusals_never_give_up(platform: Platform, smtp: SmtpServer, clock: FixedClock) -> None:
    wire(platform, smtp)
    platform.mail.policy = RetryPolicy(max_attempts=2)
    smtp.recorder.refuse["busy@example.be"] = "451 4.3.0 try again later"
    _enqueue(platform, "busy@example.be")
    for _ in range(5):
        platform.mail.deliver()
        clock.advance(timedelta(hours=1))
    (row,) = _rows(platform)
    assert (row.status, row.attempts) == ("pending", 5)
    del smtp.recorder.refuse["busy@example.be"]
    assert platform.mail.deliver().sent == 1


def test_a_claimed_message_is_not_sent_twice_and_a_lost_claim_is_retried(
    platform: Platform, smtp: SmtpServer, clock: FixedClock
) -> None:
    wire(platform, smtp)
    _enqueue(platform, "a@example.be")
    claimed = platform.mail._claim(10)  # a round that dies before sending (crash)
    assert len(claimed) == 1
    assert platform.mail.deliver().attempted == 0  # another round does not take it
    clock.advance(platform.mail.policy.lease)
    assert platform.mail.deliver().sent == 1  # the lease ran out: retried
    assert len(smtp.recorder.received) == 1
    assert _rows(platform)[0].attempts == 2


def test_maintenance_delivers_the_outbox(platform: Platform, smtp: SmtpServer) -> None:
    wire(platform, smtp)
    _enqueue(platform, "a@example.be")
    assert platform.maintenance() == []
    assert [r.rcpt_tos for r in smtp.recorder.received] == [["a@example.be"]]


def test_a_mail_is_written_with_its_change_or_not_at_all(platform: Platform) -> None:
    with pytest.raises(RuntimeError), platform.rt.db.transaction() as s:
        platform.mail.enqueue(s, to="a@example.be", subject="s", body="b", topic="test")
        raise RuntimeError("the change failed")
    assert _rows(platform) == []
    with pytest.raises(DomainError) as e, platform.rt.db.transaction() as s:
        platform.mail.enqueue(
            s, to="a@example.be", subject="s\r\nBcc: eve@example.be", body="b", topic="test"
        )
    assert e.value.kind is ErrorKind.BAD_REQUEST
