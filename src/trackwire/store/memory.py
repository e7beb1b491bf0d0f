"""An in-memory adapter of :class:`trackwire.ports.Store`, shipped for users' own tests.

Same contract as the SQLite store (the contract suite runs against both); nothing survives the process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from trackwire.core.event import Event, decode_event, dumps, encode_event, loads, ordering_key
from trackwire.core.ledger import Checkpoint, DeliveryRow, State
from trackwire.errors import StoreError
from trackwire.ports import AppendResult, GroupRecord, LogRecord

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._events: list[tuple[int, str, str, str]] = []
        self._dedupe: dict[tuple[str, str], int] = {}
        self._cursors: dict[str, str] = {}
        self._groups: dict[str, GroupRecord] = {}
        self._rows: dict[str, dict[int, DeliveryRow]] = {}

    def close(self) -> None:
        pass

    def append(self, events: Sequence[Event], *, source: str | None = None, cursor: Any = None) -> AppendResult:
        received = datetime.now(UTC)
        ids: list[int | None] = []
        # Everything is encoded before anything is stored: an event or cursor that cannot be serialised
        # stores nothing at all, as a rolled-back transaction would.
        saved_cursor = dumps(cursor) if source is not None and cursor is not None else None
        with self._lock:
            fresh: list[tuple[int, str, str, str]] = []
            seen: dict[tuple[str, str], int] = {}
            for event in events:
                dedupe = (event.source, str(event.source_id))
                if dedupe in self._dedupe or dedupe in seen:
                    ids.append(None)
                    continue
                event_id = len(self._events) + len(fresh) + 1
                fresh.append(
                    (event_id, event.type, ordering_key(event), encode_event(event, event.received or received))
                )
                seen[dedupe] = event_id
                ids.append(event_id)
            self._events.extend(fresh)
            self._dedupe.update(seen)
            if source is not None and saved_cursor is not None:
                self._cursors[source] = saved_cursor
        return AppendResult(tuple(ids))

    def read_after(self, position: int, limit: int, types: Sequence[str] | None = None) -> list[LogRecord]:
        if limit < 1:
            return []
        with self._lock:
            chosen = self._events[max(position, 0) :]
        wanted = None if types is None else set(types)
        out: list[LogRecord] = []
        for event_id, event_type, key, body in chosen:
            if wanted is None or event_type in wanted:
                out.append(LogRecord(event_id, event_type, key, body))
                if len(out) >= limit:
                    break
        return out

    def get_event(self, event_id: int) -> Event | None:
        with self._lock:
            if 0 < event_id <= len(self._events):
                return decode_event(self._events[event_id - 1][3], event_id)
        return None

    def get_records(self, event_ids: Sequence[int]) -> list[LogRecord]:
        with self._lock:
            rows = [self._events[i - 1] for i in event_ids if 0 < i <= len(self._events)]
        return [LogRecord(*row) for row in rows]

    def last_id(self) -> int:
        return len(self._events)

    def get_cursor(self, source: str) -> Any:
        saved = self._cursors.get(source)
        return None if saved is None else loads(saved)

    def register_group(self, name: str, start: int) -> GroupRecord:
        with self._lock:
            if name not in self._groups:
                self._groups[name] = GroupRecord(name, start, "active", None, 0, datetime.now(UTC))
            return self._groups[name]

    def groups(self) -> list[GroupRecord]:
        return sorted(self._groups.values(), key=lambda g: g.name)

    def set_group_state(self, name: str, state: str, reason: str | None = None) -> None:
        with self._lock:
            self._groups[name] = replace(self._groups[name], state=state, reason=reason)

    def load_rows(self, group: str, states: Sequence[str] | None = None) -> list[DeliveryRow]:
        rows = sorted(self._rows.get(group, {}).values(), key=lambda r: r.event_id)
        return [r for r in rows if states is None or r.state in states]

    def write_checkpoint(self, group: str, plan: Checkpoint) -> None:
        with self._lock:
            record = self._groups.get(group)
            if record is None:
                raise StoreError(f"no group {group!r}: register it before writing its progress")
            rows = self._rows.setdefault(group, {})
            for row in plan.upserts:
                rows[row.event_id] = row
            for event_id in plan.deletes:
                rows.pop(event_id, None)
            self._groups[group] = replace(record, position=max(record.position, plan.position))

    def dead_letters(
        self, group: str | None = None, *, after: tuple[str, int] | None = None, limit: int = 100
    ) -> list[tuple[str, DeliveryRow]]:
        start = after or ("", 0)
        found = [
            (g, r)
            for g, rows in self._rows.items()
            if group is None or g == group
            for r in rows.values()
            if r.state is State.DEAD and (g, r.event_id) > start
        ]
        return sorted(found, key=lambda pair: (pair[0], pair[1].event_id))[:limit]

    def _bump(self, group: str) -> None:
        record = self._groups.get(group)
        if record is not None:
            self._groups[group] = replace(record, generation=record.generation + 1)

    def requeue_dead(self, group: str, event_ids: Sequence[int] | None = None) -> int:
        with self._lock:
            rows = self._rows.get(group, {})
            changed = 0
            for event_id, row in list(rows.items()):
                if row.state is State.DEAD and (event_ids is None or event_id in event_ids):
                    rows[event_id] = replace(row, state=State.PENDING, attempts=0, retry_at=None)
                    changed += 1
            self._bump(group)
            return changed

    def discard_dead(self, group: str, event_ids: Sequence[int] | None = None) -> int:
        with self._lock:
            rows = self._rows.get(group, {})
            doomed = [i for i, r in rows.items() if r.state is State.DEAD and (event_ids is None or i in event_ids)]
            for event_id in doomed:
                del rows[event_id]
            return len(doomed)

    def replay_range(self, group: str, first: int, last: int, consumers: Sequence[str] = ()) -> int:
        with self._lock:
            rows = self._rows.setdefault(group, {})
            changed = 0
            for event_id, _type, key, _body in self._events[max(first - 1, 0) : last]:
                if event_id not in rows:
                    rows[event_id] = DeliveryRow(event_id, key, State.PENDING, 0, None, tuple(consumers))
                    changed += 1
            self._bump(group)
            return changed
