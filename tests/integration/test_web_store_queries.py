"""The browse queries of the SQLite store: migration 4, index use (no full scans, no OFFSET), time bounds."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trackwire.core.event import Event, Ref
from trackwire.store.sqlite import SqliteStore
from trackwire.store.sqlite import queries as q
from trackwire.store.sqlite.browse import EventQuery
from trackwire.store.sqlite.migrations import MIGRATIONS, migrate


def test_migration_4_adds_the_browse_indexes_to_a_store_that_already_has_events(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    number, _, script = MIGRATIONS[0]
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO events (source, source_id, type, key, entity_type, entity_id, project_id, occurred, received,"
        " body) VALUES ('s', '1', 't', 'Shot:1', 'Shot', '1', '70', '2026-01-01', '2026-01-01', '{}')"
    )
    migrate(conn)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"events_by_source", "events_by_entity"} <= indexes
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    conn.close()


def test_every_search_walks_an_index_newest_first_without_sorting(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "plan.db")
    params = {"source": "s", "type": "t", "etype": "Shot", "eid": "1", "project": "70", "before": 10, "low": 0}
    params["limit"] = 50
    conn = sqlite3.connect(store.path)
    for sql, index in [
        (q.SEARCH_EVENTS, "INTEGER PRIMARY KEY"),
        (q.SEARCH_EVENTS_BY_TYPE, "events_by_type"),
        (q.SEARCH_EVENTS_BY_SOURCE, "events_by_source"),
        (q.SEARCH_EVENTS_BY_ENTITY, "events_by_entity"),
        (q.SEARCH_EVENTS_BY_PROJECT, "events_by_project"),
    ]:
        plan = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert "OFFSET" not in sql.upper()
    conn.close()
    store.close()


def test_time_bounds_and_per_minute_counts_follow_received_order(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    try:
        before = datetime.now(UTC) - timedelta(seconds=1)
        store.append([Event(source="s", source_id=str(i), type="t", entity=Ref("Shot", i)) for i in range(30)])
        assert store.first_id_received_at(before) == 1
        assert store.first_id_received_at(datetime.now(UTC) + timedelta(minutes=1)) == 31
        per_minute = store.events_per_minute(datetime.now(UTC) - timedelta(minutes=59), 60)
        assert sum(per_minute.values()) == 30
        found = store.search_events(EventQuery(entity_type="Shot", entity_id="7"))
        assert [f.id for f in found] == [8]
        assert [f.id for f in store.search_events(EventQuery(before=5, limit=3))] == [4, 3, 2]
        assert store.distinct_sources() == ["s"] and store.distinct_types() == ["t"]
    finally:
        store.close()
