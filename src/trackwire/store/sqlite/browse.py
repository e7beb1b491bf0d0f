"""Read-only queries for the dashboard and the JSON API: search the log, look up deliveries.

Every list pages by key (event id, or (group, event id)), never by offset, so a store of millions
of events answers any page as fast as the first.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trackwire.core.ledger import DeliveryRow, State
from trackwire.store.sqlite import queries as q

__all__ = ["EventQuery", "FoundEvent", "SqliteBrowse", "StoredDelivery"]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters of the event list; ``before`` is the page key (exclusive), ``low`` the smallest id wanted."""

    source: str | None = None
    type: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    project: str | None = None
    before: int | None = None
    low: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class FoundEvent:
    id: int
    received: str
    body: str


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    group: str
    row: DeliveryRow
    updated: str


def _delivery(group: str, values: tuple[Any, ...]) -> StoredDelivery:
    event_id, key, state, attempts, retry_at, consumers, error, tb, updated = values
    row = DeliveryRow(event_id, key, State(state), attempts, retry_at, tuple(json.loads(consumers)), error, tb)
    return StoredDelivery(group, row, updated)


class SqliteBrowse:
    """Mixed into :class:`~trackwire.store.sqlite.SqliteStore`; uses its per-thread reader."""

    @property
    def _reader(self) -> sqlite3.Connection:  # provided by the store
        raise NotImplementedError

    def search_events(self, query: EventQuery) -> list[FoundEvent]:
        params = {
            "source": query.source,
            "type": query.type,
            "etype": query.entity_type,
            "eid": query.entity_id,
            "project": query.project,
            "before": query.before if query.before is not None else 2**62,
            "low": query.low,
            "limit": query.limit,
        }
        if query.entity_type is not None and query.entity_id is not None:
            sql = q.SEARCH_EVENTS_BY_ENTITY
        elif query.project is not None:
            sql = q.SEARCH_EVENTS_BY_PROJECT
        elif query.type is not None:
            sql = q.SEARCH_EVENTS_BY_TYPE
        elif query.source is not None:
            sql = q.SEARCH_EVENTS_BY_SOURCE
        else:
            sql = q.SEARCH_EVENTS
        return [FoundEvent(*r) for r in self._reader.execute(sql, params).fetchall()]

    def first_id_received_at(self, moment: datetime, low: int | None = None) -> int:
        """The smallest id received at or after ``moment`` (one past the last id if none)."""
        conn = self._reader
        if low is None:
            low = int(conn.execute(q.FIRST_ID).fetchone()[0])
        high = int(conn.execute(q.LAST_ID).fetchone()[0]) + 1
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # a time without a zone is taken as UTC
        stamp = moment.astimezone(UTC).isoformat()
        while low < high:
            middle = (low + high) // 2
            row = conn.execute(q.RECEIVED_AT_OR_AFTER_ID, (middle,)).fetchone()
            if row is None or row[1] >= stamp:
                high = middle
            else:
                low = int(row[0]) + 1
        return low

    def events_per_minute(self, since: datetime, minutes: int = 60) -> dict[str, int]:
        """Events received per minute (``YYYY-MM-DDTHH:MM`` in UTC) from ``since``'s minute on.

        Counted as id spans between minute boundaries (a binary search each), so the cost does not
        grow with the number of events; ids are dense, so spans are counts.
        """
        start = since.replace(second=0, microsecond=0)
        bounds = []
        low: int | None = None
        for i in range(minutes + 1):
            low = self.first_id_received_at(start + timedelta(minutes=i), low)
            bounds.append(low)
        return {
            (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M"): bounds[i + 1] - bounds[i]
            for i in range(minutes)
            if bounds[i + 1] > bounds[i]
        }

    def events_per_source(self, after: int, upto: int) -> dict[str, int]:
        return {s: n for s, n in self._reader.execute(q.EVENTS_PER_SOURCE_SINCE, (after, upto)).fetchall()}

    def distinct_sources(self, limit: int = 200) -> list[str]:
        return [r[0] for r in self._reader.execute(q.DISTINCT_SOURCES, (limit,)).fetchall()]

    def distinct_types(self, limit: int = 500) -> list[str]:
        return [r[0] for r in self._reader.execute(q.DISTINCT_TYPES, (limit,)).fetchall()]

    def get_delivery(self, group: str, event_id: int) -> StoredDelivery | None:
        row = self._reader.execute(q.GET_DELIVERY, (group, event_id)).fetchone()
        return None if row is None else _delivery(group, row)

    def group_rows(self, group: str, after: int = 0, limit: int = 100) -> list[StoredDelivery]:
        return [_delivery(group, r) for r in self._reader.execute(q.ROWS_OF_GROUP, (group, after, limit)).fetchall()]

    def last_error(self, group: str) -> StoredDelivery | None:
        row = self._reader.execute(q.LAST_ERROR_OF_GROUP, (group,)).fetchone()
        return None if row is None else _delivery(group, row)

    def recent_failures(self, since: datetime, limit: int = 50) -> tuple[int, list[StoredDelivery]]:
        stamp = since.isoformat()
        total = int(self._reader.execute(q.COUNT_RECENT_FAILURES, (stamp,)).fetchone()[0])
        rows = self._reader.execute(q.RECENT_FAILURES, (stamp, limit)).fetchall()
        return total, [_delivery(r[0], r[1:]) for r in rows]
