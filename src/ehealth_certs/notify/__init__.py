"""Mail: an outbox written with the change it announces, delivered to SMTP with retry."""

from ehealth_certs.notify.outbox import DeliveryReport, Outbox, RetryPolicy
from ehealth_certs.notify.smtp import MailDeliveryError, SmtpTransport

__all__ = ["DeliveryReport", "MailDeliveryError", "Outbox", "RetryPolicy", "SmtpTransport"]
