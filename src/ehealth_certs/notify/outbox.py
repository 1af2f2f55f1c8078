"""The mail outbox: written in the transaction of the change it announces, delivered later with retry.

A mail server outage therefore loses nothing: the change and its mails commit together, and a
delivery round only moves a message to ``sent`` after the server accepted it. Each round first
*claims* the due messages (counts the attempt and pushes ``next_attempt_at`` one lease ahead, in a
committed transaction), so two delivery loops never send the same message, and a process that dies
mid-round leaves its messages to be retried when the lease runs out.

Delivery is at-least-once: a crash between the server's "250 OK" and our commit of ``sent`` sends the
message again after the lease. The stable ``Message-ID`` lets mail clients fold such a duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.notify.smtp import MailDeliveryError, MailTransport
from ehealth_certs.runtime import Runtime
from ehealth_certs.states import StateTable
from ehealth_certs.storage.models.registry import MailMessage

log = logging.getLogger(__name__)


class MailState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # a permanent refusal, after max_attempts; an operator may requeue it


MAIL: StateTable[MailState] = StateTable(
    "mail message",
    MailState,
    {
        MailState.PENDING: {MailState.SENT, MailState.FAILED},
        MailState.SENT: set(),
        MailState.FAILED: {MailState.PENDING},
    },
)
PENDING, SENT, FAILED = MailState.PENDING.value, MailState.SENT.value, MailState.FAILED.value
STATUSES = tuple(s.value for s in MailState)
_MAX_ERROR = 1000


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff. Transient failures (server down, 4xx) retry for ever, capped at ``max_delay``;
    a permanent 5xx refusal marks the message failed once it has had ``max_attempts`` attempts."""

    base_delay: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 5
    lease: timedelta = timedelta(minutes=10)
    batch: int = 200

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1 → base, 2 → 2·base, ...)."""
        exponent = min(max(attempts - 1, 0), 32)  # bounded: timedelta overflows long before 2**1000
        delay: timedelta = self.base_delay * (2**exponent)
        return min(delay, self.max_delay)


@dataclass
class DeliveryReport:
    attempted: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted,
            "sent": self.sent,
            "deferred": self.deferred,
            "failed": self.failed,
        }


class Outbox:
    def __init__(self, rt: Runtime, transport: MailTransport, *, policy: RetryPolicy | None = None) -> None:
        self._rt = rt
        self.transport = transport
        self.policy = policy or RetryPolicy()
        self._mail_from = rt.settings.mail_from
        self._msgid_domain = self._mail_from.rpartition("@")[2] or "localhost"

    # writing -----------------------------------------------------------------------------------
    def enqueue(
        self,
        session: Session,
        *,
        to: str,
        subject: str,
        body: str,
        topic: str,
        headers: dict[str, str] | None = None,
    ) -> MailMessage:
        """Add a mail to the caller's unit of work (no commit here: it commits with the change)."""
        for name, value in [("recipient", to), ("subject", subject), *(headers or {}).items()]:
            if "\r" in value or "\n" in value:
                raise DomainError(ErrorKind.BAD_REQUEST, f"mail {name} contains a line break")
        now = self._rt.clock.now()
        row = MailMessage(
            message_id=make_msgid(domain=self._msgid_domain),
            topic=topic,
            recipient=to,
            subject=subject,
            body=body,
            headers=dict(headers or {}),
            created_at=now,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
        )
        session.add(row)
        return row

    # delivering --------------------------------------------------------------------------------
    def deliver(self, *, limit: int | None = None) -> DeliveryReport:
        """One delivery round over the messages that are due. Never raises for mail-server trouble."""
        report = DeliveryReport()
        claimed = self._claim(limit or self.policy.batch)
        if not claimed:
            return report
        report.attempted = len(claimed)
        done: set[int] = set()
        try:
            with self.transport.connect() as conn:
                for row in claimed:
                    try:
                        conn.send(self._email(row))
                    except MailDeliveryError as exc:
                        self._record_failure(row.id, exc, report)
                        done.add(row.id)
                        if exc.connection_lost:
                            raise
                        continue
                    self._record_sent(row.id)
                    report.sent += 1
                    done.add(row.id)
        except MailDeliveryError as exc:
            for row in claimed:
                if row.id not in done:
                    self._record_failure(row.id, MailDeliveryError(str(exc), connection_lost=True), report)
        if report.errors:
            log.warning(
                "mail delivery: %s sent, %s deferred, %s failed; first error: %s",
                report.sent,
                report.deferred,
                report.failed,
                report.errors[0],
            )
        return report

    def _claim(self, limit: int) -> list[MailMessage]:
        now = self._rt.clock.now()
        lease_end = now + self.policy.lease
        with self._rt.db.transaction() as s:
            due = s.scalars(
                select(MailMessage.id)
                .where(MailMessage.status == PENDING, MailMessage.next_attempt_at <= now)
                .order_by(MailMessage.next_attempt_at, MailMessage.id)
                .limit(limit)
            ).all()
            claimed_ids = []
            for mid in due:
                # The WHERE is re-checked under the row lock: of two concurrent rounds, one wins.
                result = s.execute(
                    update(MailMessage)
                    .where(
                        MailMessage.id == mid,
                        MailMessage.status == PENDING,
                        MailMessage.next_attempt_at <= now,
                    )
                    .values(attempts=MailMessage.attempts + 1, next_attempt_at=lease_end)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed_ids.append(mid)
            if not claimed_ids:
                return []
            rows = list(
                s.scalars(select(MailMessage).where(MailMessage.id.in_(claimed_ids)).order_by(MailMessage.id))
            )
            for r in rows:
                s.refresh(r)
            return rows

    def _email(self, row: MailMessage) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._mail_from
        msg["To"] = row.recipient
        msg["Subject"] = row.subject
        msg["Date"] = format_datetime(row.created_at)
        msg["Message-ID"] = row.message_id
        msg["Auto-Submitted"] = "auto-generated"
        for name, value in row.headers.items():
            msg[name] = value
        msg.set_content(row.body)
        return msg

    def _record_sent(self, message_id: int) -> None:
        with self._rt.db.transaction() as s:
            row = s.get(MailMessage, message_id)
            assert row is not None
            row.status = MAIL.transition(row.status, MailState.SENT).value
            row.sent_at = self._rt.clock.now()
            row.last_error = None
            # The body carries single-purpose link tokens; once the server has it, we keep no copy.
            row.body = ""

    def _record_failure(self, message_id: int, exc: MailDeliveryError, report: DeliveryReport) -> None:
        now = self._rt.clock.now()
        report.errors.append(str(exc))
        with self._rt.db.transaction() as s:
            row = s.get(MailMessage, message_id)
            assert row is not None
            row.last_error = str(exc)[:_MAX_ERROR]
            if exc.permanent and row.attempts >= self.policy.max_attempts:
                row.status = MAIL.transition(row.status, MailState.FAILED).value
                report.failed += 1
            else:
                row.next_attempt_at = now + self.policy.delay(row.attempts)
                report.deferred += 1

    # operating ---------------------------------------------------------------------------------
    def messages(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if status is not None and status not in STATUSES:
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"unknown mail status {status!r} (one of {', '.join(STATUSES)})"
            )
        with self._rt.db.read() as s:
            q = select(MailMessage).order_by(MailMessage.id.desc()).limit(limit)
            if status is not None:
                q = q.where(MailMessage.status == status)
            return [_view(r) for r in s.scalars(q)]

    def requeue(self, message_id: int, *, operator: str) -> None:
        """Give a failed message a fresh series of attempts (after the cause was fixed)."""
        with self._rt.db.transaction() as s:
            row = s.get(MailMessage, message_id)
            if row is None:
                raise DomainError(ErrorKind.NOT_FOUND, f"no mail message {message_id}")
            row.status = MAIL.transition(row.status, MailState.PENDING).value
            row.attempts = 0
            row.next_attempt_at = self._rt.clock.now()
            self._rt.audit.append(s, actor=operator, action="mail.requeued", obj=f"mail/{message_id}")


def _view(r: MailMessage) -> dict[str, Any]:
    return {
        "id": r.id,
        "topic": r.topic,
        "recipient": r.recipient,
        "subject": r.subject,
        "status": r.status,
        "attempts": r.attempts,
        "createdAt": r.created_at.isoformat(),
        "nextAttemptAt": r.next_attempt_at.isoformat() if r.status == PENDING else None,
        "sentAt": r.sent_at.isoformat() if r.sent_at else None,
        "lastError": r.last_error,
    }
