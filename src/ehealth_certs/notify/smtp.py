"""SMTP transport: one connection per delivery round, each failure classified as permanent or transient."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from ehealth_certs.config import Settings


class MailDeliveryError(Exception):
    """Sending failed. ``permanent``: the server refused this message with a 5xx reply.

    ``connection_lost``: the session is unusable, so the rest of the round must wait for a new one.
    """

    def __init__(
        self, message: str, *, code: int | None = None, permanent: bool = False, connection_lost: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent
        self.connection_lost = connection_lost


class MailConnection(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class MailTransport(Protocol):
    def connect(self) -> AbstractContextManager[MailConnection]:
        """An open connection; raises MailDeliveryError if none can be had."""
        ...


def _reply_error(code: int, text: bytes | str, what: str) -> MailDeliveryError:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else text
    # 5xx is the server saying "never": retrying the same message cannot help. 4xx is "not now".
    return MailDeliveryError(f"{what}: {code} {detail}", code=code, permanent=500 <= code < 600)


class _SmtpConnection:
    def __init__(self, smtp: smtplib.SMTP) -> None:
        self._smtp = smtp

    def send(self, message: EmailMessage) -> None:
        try:
            refused = self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _reply_error(code, text, "recipient refused") from exc
        except smtplib.SMTPSenderRefused as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, "sender refused") from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise MailDeliveryError(f"connection lost: {exc}", connection_lost=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, "refused") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise MailDeliveryError(f"connection lost: {exc}", connection_lost=True) from exc
        if refused:  # only some recipients refused; every message here has exactly one
            code, text = next(iter(refused.values()))
            raise _reply_error(code, text, "recipient refused")


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
        )

    @contextmanager
    def connect(self) -> Iterator[MailConnection]:
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailDeliveryError(
                f"cannot reach the mail server {self.host}:{self.port}: {exc}", connection_lost=True
            ) from exc
        try:
            try:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password or "")
            except (OSError, smtplib.SMTPException) as exc:
                # A refused login or TLS handshake is the server's configuration, not the message's fault:
                # transient, so that fixing the settings delivers everything that waited.
                raise MailDeliveryError(f"mail server session refused: {exc}", connection_lost=True) from exc
            yield _SmtpConnection(smtp)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
