"""The ShotGrid poller's memory of ids: the newest id read, and the gap ids still awaited.

ShotGrid hands out ``EventLogEntry`` ids in commit-start order, so a long transaction leaves a
hole that fills later. The poller always reads *after the newest id it has seen*; the holes live
here, each with an expiry, and are looked up separately. A hole therefore never holds back newer
events (shotgunEvents re-reads the same window until the hole expires), and an id that never
appears is reported once, when its wait ends.

Pure: takes ids, creation times and the current time (epoch seconds), returns decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Backlog", "Observation", "id_ranges"]


@dataclass(frozen=True, slots=True)
class Observation:
    """What a main read taught: how many new ids it covered, and gap ids given up on at once."""

    accepted: tuple[int, ...]
    lost: tuple[int, ...]
    waiting: int


@dataclass(slots=True)
class Backlog:
    """``last_id``: newest id read; ``missing``: gap id -> epoch second its wait ends."""

    last_id: int
    timeout: float = 300.0
    max_missing: int = 10_000
    missing: dict[int, float] = field(default_factory=dict)

    def observe(self, entries: Sequence[tuple[int, float]], now: float) -> Observation:
        """Take a main read's ``(id, created_at epoch)`` pairs (ascending ids > ``last_id``).

        Ids skipped between them become missing, unless the entry after the gap is already older
        than the timeout (then the gap is history: given up on at once, like shotgunEvents does),
        or the backlog is full (then the overflow is given up on and reported).
        """
        accepted: list[int] = []
        lost: list[int] = []
        waiting = 0
        for entry_id, created in entries:
            if entry_id <= self.last_id:
                if self.missing.pop(entry_id, None) is not None:
                    accepted.append(entry_id)
                continue
            if entry_id > self.last_id + 1:
                gap = range(self.last_id + 1, entry_id)
                if now - created > self.timeout:
                    lost.extend(gap)
                else:
                    room = max(0, self.max_missing - len(self.missing))
                    expiry = now + self.timeout
                    for missing_id in gap[:room]:
                        self.missing[missing_id] = expiry
                        waiting += 1
                    lost.extend(gap[room:])
            self.last_id = entry_id
            accepted.append(entry_id)
        return Observation(tuple(accepted), tuple(lost), waiting)

    def wanted(self, limit: int) -> list[int]:
        """The oldest awaited ids, at most ``limit`` (one lookup's worth)."""
        return sorted(self.missing)[:limit]

    def found(self, ids: Iterable[int]) -> list[int]:
        """Ids a backlog lookup returned; those still awaited are accepted (the rest were seen already)."""
        accepted = [i for i in ids if self.missing.pop(i, None) is not None]
        return sorted(accepted)

    def expire(self, now: float) -> list[int]:
        """Ids whose wait has ended: forgotten now, to be reported once."""
        gone = sorted(i for i, expiry in self.missing.items() if expiry <= now)
        for missing_id in gone:
            del self.missing[missing_id]
        return gone

    def next_expiry(self) -> float | None:
        return min(self.missing.values()) if self.missing else None

    # -- the durable form (the source cursor) --------------------------------------------------

    def to_cursor(self) -> dict[str, Any]:
        return {"last_id": self.last_id, "backlog": {str(k): v for k, v in sorted(self.missing.items())}}

    @classmethod
    def from_cursor(cls, cursor: Mapping[str, Any], *, timeout: float, max_missing: int) -> Backlog:
        backlog = cursor.get("backlog") or {}
        return cls(
            last_id=int(cursor["last_id"]),
            timeout=timeout,
            max_missing=max_missing,
            missing={int(k): float(v) for k, v in backlog.items()},
        )


def id_ranges(ids: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``: how lost ids are written in one log line."""
    parts: list[str] = []
    start = prev = None
    for value in sorted(ids):
        if start is None:
            start = prev = value
            continue
        assert prev is not None
        if value == prev + 1:
            prev = value
            continue
        parts.append(f"{start}-{prev}" if prev != start else str(start))
        start = prev = value
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(parts)
