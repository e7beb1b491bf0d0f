"""Logging: stdout and a rotating file, every line with its context (plugin, event id).

Plugins' records arrive from their worker processes already carrying ``plugin`` and ``event_id``.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from pathlib import Path

from trackwire.config import LogSettings

__all__ = ["setup_logging"]

_TEXT = "%(asctime)s %(levelname)-7s %(name)s%(context)s: %(message)s"


class ContextFilter(logging.Filter):
    """Gives every record a ``context`` string such as `` [plugin=notify event=42]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        parts = []
        plugin = getattr(record, "plugin", None)
        event_id = getattr(record, "event_id", None)
        if plugin:
            parts.append(f"plugin={plugin}")
        if event_id:
            parts.append(f"event={event_id}")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("plugin", "event_id"):
            value = getattr(record, key, None)
            if value:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, default=str)


def setup_logging(settings: LogSettings, base: Path, *, stream: bool = True) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter: logging.Formatter = JsonFormatter() if settings.format == "json" else logging.Formatter(_TEXT)
    handlers: list[logging.Handler] = []
    if stream:
        handlers.append(logging.StreamHandler(sys.stdout))
    if settings.file is not None:
        path = settings.file if settings.file.is_absolute() else base / settings.file
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path, maxBytes=settings.max_bytes, backupCount=settings.backups, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    root.setLevel(settings.level)
    for noisy in ("watchfiles", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
