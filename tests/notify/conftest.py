from __future__ import annotations

from collections.abc import Iterator

import pytest

from ehealth_certs.platform import Platform
from tests.notify.smtp_server import SmtpServer, smtp_server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def smtp_down() -> Iterator[SmtpServer]:
    """A server that is not listening yet: call ``.start()`` to end the outage."""
    with smtp_server(running=False) as server:
        yield server


def wire(platform: Platform, server: SmtpServer) -> Platform:
    platform.mail.transport = server.transport
    return platform
