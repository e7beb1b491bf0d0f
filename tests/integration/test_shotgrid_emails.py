"""Error emails of shotgunEvents plugins: sent through a real SMTP server (aiosmtpd), rate limited."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import wait_for
from trackwire.plugins.sg_logging import RateLimitedEmailHandler


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def test_plugin_errors_are_emailed_and_a_burst_becomes_one_message_per_interval(inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    smtp = {"server": "127.0.0.1", "port": port, "sender": "daemon@studio", "subject": "[SG]", "min_interval": 0.5}
    handler = RateLimitedEmailHandler(smtp, ["ops@studio"], "brittle")
    logger = logging.getLogger("plugin.brittle.test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("first failure")
        wait_for(lambda: len(box.messages) == 1, 10, what="the first email")
        for n in range(20):
            logger.error("failure %d", n)
        logger.info("not an error: never emailed")
        wait_for(lambda: len(box.messages) == 2, 10, what="the gathered email")
    finally:
        logger.removeHandler(handler)
    rcpt, first = box.messages[0]
    assert rcpt == ["ops@studio"]
    assert first["Subject"].startswith("[SG] brittle") and "ERROR/CRITICAL" in first["Subject"]
    assert "first failure" in first.get_payload()
    _, second = box.messages[1]
    body = second.get_payload()
    assert "(20 errors)" in second["Subject"]
    assert "failure 0" in body and "failure 19" in body and "not an error" not in body
