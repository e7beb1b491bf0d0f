"""The Kitsu poller's cursor: which events of zou's log are already stored, decided without I/O.

zou's event log (``GET /data/events/last``) has no sequence: ids are random UUIDs, ``created_at`` is
returned truncated to whole seconds, ``after`` compares strictly and only takes whole seconds, pages
come newest first and ``cursor_event_id`` pages backwards. Events of one second are not in causal
order, and with several server workers a row can commit after a row with a later ``created_at``.

So the cursor is a *high-water second* plus *the ids already stored within an overlap window* below
it. Each poll asks for everything after ``high_water - overlap``, pages back until a short page,
drops ids it already has, hands the rest over oldest first, then raises the high-water mark and
forgets ids that fell out of the window. An event is lost only if it commits more than ``overlap``
seconds after its ``created_at`` (or two events share a timestamp to the microsecond at a page
boundary).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["KitsuCursor", "Poll", "format_second", "next_page", "parse_second"]

FORMAT = "%Y-%m-%dT%H:%M:%S"


def parse_second(value: str) -> datetime:
    """zou's ``created_at`` (``2026-11-23T18:04:30``, naive UTC) as a naive datetime, whole seconds."""
    return datetime.fromisoformat(value).replace(microsecond=0, tzinfo=None)


def format_second(value: datetime) -> str:
    """The only form zou's ``after``/``before`` accept: whole seconds, no zone."""
    return value.strftime(FORMAT)


def next_page(page: Sequence[Mapping[str, Any]], limit: int) -> str | None:
    """The ``cursor_event_id`` of the next (older) page, or ``None`` when this page was the last."""
    if len(page) < limit or not page:
        return None
    return str(page[-1]["id"])


@dataclass(frozen=True)
class Poll:
    """What one poll decided: the new events, oldest first, and the cursor to store with them."""

    events: list[dict[str, Any]]
    cursor: KitsuCursor


@dataclass(frozen=True)
class KitsuCursor:
    """(high-water second, ids seen in the overlap window below it). Immutable; polls return a new one."""

    high_water: datetime | None = None
    seen: Mapping[str, datetime] = field(default_factory=dict)

    def after(self, overlap: float) -> str | None:
        """The ``after`` parameter of the next poll (``None``: nothing stored yet, read everything)."""
        if self.high_water is None:
            return None
        return format_second(self.high_water - timedelta(seconds=int(overlap + 0.999999)))

    def absorb(self, fetched: Iterable[Mapping[str, Any]], overlap: float) -> Poll:
        """Decide which of ``fetched`` (as the server returned them, newest first) are new.

        New events come back oldest first; within one second they keep the server's order reversed,
        which is the order of the stored microsecond timestamps.
        """
        window = timedelta(seconds=int(overlap + 0.999999))
        fresh: list[dict[str, Any]] = []
        ids: set[str] = set()
        high = self.high_water
        for record in fetched:
            ident = str(record["id"])
            second = parse_second(str(record["created_at"]))
            if high is None or second > high:
                high = second
            if ident in self.seen or ident in ids:
                continue
            ids.add(ident)
            fresh.append(dict(record))
        fresh.reverse()
        fresh.sort(key=lambda r: parse_second(str(r["created_at"])))  # stable: keeps order within a second
        if high is None:
            return Poll([], self)
        floor = high - window
        seen = {i: s for i, s in self.seen.items() if s >= floor}
        for record in fresh:
            second = parse_second(str(record["created_at"]))
            if second >= floor:
                seen[str(record["id"])] = second
        return Poll(fresh, KitsuCursor(high, seen))

    def to_json(self) -> dict[str, Any]:
        return {
            "high_water": None if self.high_water is None else format_second(self.high_water),
            "seen": {i: format_second(s) for i, s in sorted(self.seen.items())},
        }

    @classmethod
    def from_json(cls, value: Any) -> KitsuCursor:
        if not value:
            return cls()
        high = value.get("high_water")
        return cls(
            None if high is None else parse_second(high),
            {str(i): parse_second(s) for i, s in (value.get("seen") or {}).items()},
        )
