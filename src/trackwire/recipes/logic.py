"""The recipes' decisions, with no tracker in sight: dates, paths, hand-off rules, notifications.

Pure functions take facts and return decisions; the few side effects (folders, file copies, a sent
notification) are idempotent and take their paths and senders as arguments.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import smtplib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

__all__ = [
    "HandoffRule",
    "SentLedger",
    "copy_template",
    "dailies_day",
    "ensure_tree",
    "handoff_for",
    "parse_rules",
    "render_path",
    "safe_name",
    "send_email",
    "send_slack",
    "studio_zone",
    "template_file",
]


def studio_zone(name: str | None) -> tzinfo:
    """The studio's time zone: an IANA name, or the machine's local zone when empty."""
    if name:
        return ZoneInfo(name)
    local = datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def dailies_day(occurred: datetime, zone: tzinfo, cutoff: time = time(10, 0)) -> date:
    """The dailies a change joins: the same day's when it happened before ``cutoff`` (studio time), else the next."""
    local = occurred.astimezone(zone)
    return local.date() if local.time() < cutoff else local.date() + timedelta(days=1)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(value: Any) -> str:
    """A path component from a tracker name: no separators, no spaces, never empty or '..'."""
    text = _UNSAFE.sub("_", str(value)).strip("._") or "_"
    return text


def render_path(template: str, values: Mapping[str, Any]) -> Path:
    """``{project}/{sequence}/{shot}`` with each value made safe; a missing key is a clear error."""
    try:
        return Path(template.format_map({k: safe_name(v) for k, v in values.items()}))
    except KeyError as exc:
        raise ValueError(f"the path template {template!r} uses {exc}, which this event does not provide") from exc


def ensure_tree(root: Path, folders: Iterable[str], values: Mapping[str, Any]) -> list[Path]:
    """Create ``root/<folder>`` for each templated folder; returns the ones that were missing."""
    created = []
    base = root.resolve()
    for folder in folders:
        path = (base / render_path(folder, values)).resolve()
        if base not in path.parents and path != base:
            raise ValueError(f"{folder!r} leaves the root folder {base}")
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            created.append(path)
    return created


def template_file(templates: Path, task_type: str) -> Path | None:
    """The template for a task type: ``<templates>/<task type>.*``, matched without regard to case."""
    if not templates.is_dir():
        return None
    wanted = safe_name(task_type).lower()
    matches = sorted(p for p in templates.iterdir() if p.is_file() and p.stem.lower() == wanted)
    return matches[0] if matches else None


def copy_template(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` unless ``target`` exists (never overwrite an artist's file)."""
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    return True


@dataclass(frozen=True)
class HandoffRule:
    """When a ``task_type`` task reaches ``status``, the ``next`` task type's assignees are told."""

    task_type: str
    status: str
    next: str


def parse_rules(raw: Sequence[Mapping[str, str]]) -> list[HandoffRule]:
    return [HandoffRule(r["task_type"], r["status"], r["next"]) for r in raw]


def handoff_for(rules: Sequence[HandoffRule], task_type: str, status: str) -> HandoffRule | None:
    """The first rule for this task type and status (names compared without regard to case)."""
    for rule in rules:
        if rule.task_type.lower() == task_type.lower() and rule.status.lower() == status.lower():
            return rule
    return None


class SentLedger:
    """Keys of notifications already sent, in a JSON-lines file: a retried event notifies nobody twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def sent(self, key: str) -> bool:
        if not self.path.exists():
            return False
        with self.path.open(encoding="utf-8") as lines:
            return any(json.loads(line).get("key") == key for line in lines if line.strip())

    def mark(self, key: str, **details: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"key": key, **details}) + "\n")
            out.flush()
            os.fsync(out.fileno())


def send_slack(webhook: str, text: str, *, timeout: float = 10.0) -> None:
    """Post ``text`` to a Slack incoming webhook (raises on a non-2xx answer, so the event is retried)."""
    response = httpx.post(webhook, json={"text": text}, timeout=timeout)
    response.raise_for_status()


def send_email(host: str, port: int, sender: str, to: str, subject: str, text: str, *, timeout: float = 10.0) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(text)
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.send_message(message)
