"""The registry's tests use the notify tests' real SMTP server fixtures."""

from tests.notify.conftest import smtp, smtp_down, wire

__all__ = ["smtp", "smtp_down", "wire"]
