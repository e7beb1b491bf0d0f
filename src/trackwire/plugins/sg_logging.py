"""Logging for shotgunEvents plugins: one file per plugin (the old ``logMode 1``) and error emails.

Both are attached in the worker process to the plugin's own logger (``plugin.<name>``), so records
still reach the daemon's log as well.
"""

from __future__ import annotations

import logging
import logging.handlers
import smtplib
import threading
import time
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

__all__ = ["RateLimitedEmailHandler", "attach_file_handler"]

_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def attach_file_handler(logger: logging.Logger, folder: Path, name: str) -> None:
    """A ``plugin.<name>`` file rotated at midnight, ten kept, as shotgunEvents wrote them."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"plugin.{name.replace('/', '.')}"
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path.resolve():
            return
    handler = logging.handlers.TimedRotatingFileHandler(path, when="midnight", backupCount=10, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(handler)


class RateLimitedEmailHandler(logging.Handler):
    """Emails ERROR records of one plugin, at most one message per ``min_interval`` seconds.

    Records arriving inside the interval are gathered and sent together with the next message, so
    a plugin failing on every event cannot flood anyone's inbox. Sending happens in a thread with
    a 5 s SMTP timeout; it never delays the callback that logged.
    """

    def __init__(self, smtp: dict[str, Any], recipients: Sequence[str], plugin: str) -> None:
        super().__init__(logging.ERROR)
        self.smtp = smtp
        self.recipients = list(recipients)
        self.plugin = plugin
        self.min_interval = float(smtp.get("min_interval", 60.0))
        self._pending: list[str] = []
        self._last_sent = 0.0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.sent = 0
        self.setFormatter(logging.Formatter(_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._lock:
            self._pending.append(text)
            wait = self._last_sent + self.min_interval - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        threading.Thread(target=self._flush, name="plugin-email", daemon=True).start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            messages, self._pending = self._pending, []
            if not messages:
                return
            self._last_sent = time.monotonic()
        try:
            self._send(messages)
        except Exception as exc:
            logging.getLogger("trackwire.plugin.email").warning("could not email %s's errors: %s", self.plugin, exc)

    def _send(self, messages: list[str]) -> None:
        smtp = self.smtp
        message = EmailMessage()
        count = f" ({len(messages)} errors)" if len(messages) > 1 else ""
        message["Subject"] = f"{smtp.get('subject', '[SG]')} {self.plugin}{count} - ERROR/CRITICAL - SG event daemon."
        message["From"] = smtp.get("sender", "trackwire@localhost")
        message["To"] = ", ".join(self.recipients)
        message.set_content("\n\n".join(messages))
        with smtplib.SMTP(smtp.get("server", "localhost"), int(smtp.get("port", 25)), timeout=5) as client:
            if smtp.get("use_tls") and smtp.get("username"):
                client.starttls()
            if smtp.get("username"):
                client.login(smtp["username"], smtp.get("password") or "")
            client.send_message(message)
        self.sent += 1
