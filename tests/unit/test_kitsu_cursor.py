"""The Kitsu poller's cursor: high-water second, ids seen in the overlap window, paging, pruning."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trackwire.core.kitsu_cursor import KitsuCursor, format_second, next_page, parse_second

T0 = datetime(2026, 11, 23, 18, 0, 0)


def record(ident: str, at: datetime, name: str = "task:update") -> dict[str, Any]:
    return {"id": ident, "created_at": format_second(at), "name": name, "data": {}}


@dataclass
class Row:
    id: str
    created_at: datetime  # with microseconds, as zou stores it


class FakeLog:
    """zou's ``/data/events/last`` semantics: newest first, strict ``after`` on the stored microseconds,
    ``cursor_event_id`` returning rows strictly older than that row, ``created_at`` truncated on output."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def query(self, after: str | None, cursor_event_id: str | None, limit: int) -> list[dict[str, Any]]:
        rows = self.rows
        if after is not None:
            bound = datetime.fromisoformat(after)
            rows = [r for r in rows if r.created_at > bound]
        if cursor_event_id is not None:
            pivot = next(r for r in self.rows if r.id == cursor_event_id)
            rows = [r for r in rows if r.created_at < pivot.created_at]
        rows = sorted(rows, key=lambda r: r.created_at, reverse=True)[:limit]
        return [record(r.id, r.created_at) for r in rows]


def poll(log: FakeLog, cursor: KitsuCursor, overlap: float, limit: int) -> tuple[list[dict[str, Any]], KitsuCursor]:
    fetched: list[dict[str, Any]] = []
    page_cursor: str | None = None
    while True:
        page = log.query(cursor.after(overlap), page_cursor, limit)
        fetched.extend(page)
        page_cursor = next_page(page, limit)
        if page_cursor is None:
            break
    result = cursor.absorb(fetched, overlap)
    return result.events, result.cursor


def test_a_fresh_cursor_reads_everything_and_remembers_the_newest_second() -> None:
    cursor = KitsuCursor()
    assert cursor.after(5) is None
    result = cursor.absorb([record("b", T0 + timedelta(seconds=2)), record("a", T0)], overlap=5)
    assert [r["id"] for r in result.events] == ["a", "b"]
    assert result.cursor.high_water == T0 + timedelta(seconds=2)
    assert result.cursor.after(5) == "2026-11-23T17:59:57"


def test_ids_already_seen_are_dropped_and_late_events_in_the_window_are_kept() -> None:
    cursor = KitsuCursor().absorb([record("a", T0 + timedelta(seconds=10))], overlap=5).cursor
    again = cursor.absorb(
        [record("a", T0 + timedelta(seconds=10)), record("late", T0 + timedelta(seconds=8))], overlap=5
    )
    assert [r["id"] for r in again.events] == ["late"]
    assert again.cursor.high_water == T0 + timedelta(seconds=10)
    assert set(again.cursor.seen) == {"a", "late"}


def test_within_one_second_new_events_come_in_the_servers_order_reversed() -> None:
    same = T0 + timedelta(seconds=1)
    result = KitsuCursor().absorb([record("3", same), record("2", same), record("1", same), record("0", T0)], 5)
    assert [r["id"] for r in result.events] == ["0", "1", "2", "3"]


def test_ids_older_than_the_overlap_window_are_pruned() -> None:
    cursor = KitsuCursor().absorb([record("old", T0)], overlap=3).cursor
    moved = cursor.absorb([record("new", T0 + timedelta(seconds=10))], overlap=3).cursor
    assert set(moved.seen) == {"new"}
    assert moved.high_water == T0 + timedelta(seconds=10)


def test_a_fractional_overlap_widens_the_window_to_whole_seconds() -> None:
    cursor = KitsuCursor(T0, {})
    assert cursor.after(2.5) == format_second(T0 - timedelta(seconds=3))


def test_the_cursor_round_trips_through_json() -> None:
    cursor = KitsuCursor().absorb([record("a", T0), record("b", T0 + timedelta(seconds=1))], 5).cursor
    assert KitsuCursor.from_json(cursor.to_json()) == cursor
    assert KitsuCursor.from_json(None) == KitsuCursor()


def test_paging_stops_at_a_short_page_and_follows_the_oldest_id_otherwise() -> None:
    page = [record("x", T0), record("y", T0)]
    assert next_page(page, 2) == "y"
    assert next_page(page, 3) is None
    assert next_page([], 1) is None


def test_created_at_with_microseconds_is_truncated_to_its_second() -> None:
    assert parse_second("2026-11-23T18:04:30.123456") == datetime(2026, 11, 23, 18, 4, 30)


def test_a_burst_larger_than_a_page_is_read_completely_by_paging() -> None:
    log = FakeLog()
    for i in range(250):
        log.rows.append(Row(str(uuid.uuid4()), T0 + timedelta(microseconds=i * 1000)))
    events, cursor = poll(log, KitsuCursor(), overlap=3, limit=40)
    assert len(events) == 250
    assert [r["id"] for r in events] == [r.id for r in log.rows]
    assert poll(log, cursor, overlap=3, limit=40)[0] == []


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), limit=st.sampled_from([3, 7, 50]), overlap=st.sampled_from([2, 3, 5]))
def test_late_commits_within_the_overlap_are_never_lost_nor_duplicated(seed: int, limit: int, overlap: int) -> None:
    rng = random.Random(seed)
    log = FakeLog()
    pending: list[tuple[float, Row]] = []  # (commit time, row)
    cursor = KitsuCursor()
    delivered: list[str] = []
    clock = 0.0
    for _ in range(120):
        clock += rng.uniform(0.0, 0.4)
        for _ in range(rng.randrange(0, 6)):
            created = T0 + timedelta(seconds=clock + rng.uniform(0, 0.2))
            delay = rng.uniform(0, overlap - 1.01)  # commits later than created_at, within the window
            pending.append((clock + 0.2 + delay, Row(str(uuid.uuid4()), created)))
        for item in [p for p in pending if p[0] <= clock]:
            pending.remove(item)
            log.rows.append(item[1])
        events, cursor = poll(log, cursor, overlap, limit)
        delivered.extend(r["id"] for r in events)
    log.rows.extend(row for _, row in pending)
    events, cursor = poll(log, cursor, overlap, limit)
    delivered.extend(r["id"] for r in events)
    assert len(delivered) == len(set(delivered))
    assert set(delivered) == {r.id for r in log.rows}
    assert all(s >= cursor.high_water - timedelta(seconds=overlap) for s in cursor.seen.values())  # type: ignore[operator]
