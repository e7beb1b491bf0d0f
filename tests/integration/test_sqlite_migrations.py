"""Schema migrations of the embedded store, and the settings that make it durable."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trackwire.core.event import Event, Ref, dumps
from trackwire.core.ledger import State
from trackwire.errors import MigrationError
from trackwire.store.sqlite import SqliteStore
from trackwire.store.sqlite import migrations as m


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def test_migration_numbers_strictly_increase() -> None:
    numbers = [number for number, _, _ in m.MIGRATIONS]
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1
    assert numbers[-1] == m.LATEST


def test_a_fresh_store_is_at_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    store = SqliteStore(path)
    try:
        assert store.pragmas()["writer.user_version"] == m.LATEST
    finally:
        store.close()
    assert _version(path) == m.LATEST
    assert {"events", "source_cursors", "groups", "deliveries"} <= _tables(path)


def _version_one_database(path: Path) -> None:
    """A database exactly as migration 1 made it, with data written the way version 1 wrote it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert m.migrate(conn, target=1) == 1
        stamp = "2024-05-01T12:00:00+00:00"
        for n in (1, 2, 3):
            # the body as the first release encoded it: every datetime tagged, occurred/received included
            body = json.dumps(
                {
                    "id": 0,
                    "source": "shotgrid:studio",
                    "source_id": str(n),
                    "type": "Shotgun_Task_Change",
                    "entity": {"type": "Task", "id": n},
                    "project": {"type": "Project", "id": 70},
                    "user": None,
                    "attribute": "sg_status_list",
                    "old": None,
                    "new": "ip",
                    "occurred": {"$dt": stamp},
                    "received": {"$dt": stamp},
                    "data": {"id": n, "created_at": {"$dt": stamp}},
                    "follows": None,
                    "key": None,
                }
            )
            conn.execute(
                "INSERT INTO events (source, source_id, type, key, entity_type, entity_id, project_id, occurred,"
                " received, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    "shotgrid:studio",
                    str(n),
                    "Shotgun_Task_Change",
                    f"Task:{n}",
                    "Task",
                    str(n),
                    "70",
                    stamp,
                    stamp,
                    body,
                ),
            )
        conn.execute(
            "INSERT INTO source_cursors (source, cursor, updated) VALUES (?, ?, ?)",
            ("shotgrid:studio", dumps({"last_id": 3}), stamp),
        )
        conn.execute("INSERT INTO groups (name, position, updated) VALUES (?, ?, ?)", ("plugins.notify", 2, stamp))
        conn.execute(
            "INSERT INTO deliveries (grp, event_id, key, state, attempts, retry_at, consumers, error, traceback,"
            " updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("plugins.notify", 1, "Task:1", "dead", 5, None, json.dumps(["notify.on_task"]), "boom", "tb", stamp),
        )
        conn.execute(
            "INSERT INTO deliveries (grp, event_id, key, state, attempts, retry_at, consumers, error, traceback,"
            " updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("plugins.notify", 2, "Task:2", "retry", 1, 99.5, json.dumps(["notify.on_task"]), "busy", None, stamp),
        )
    finally:
        conn.close()


def test_a_version_one_database_with_data_upgrades_to_the_latest_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _version_one_database(path)
    assert _version(path) == 1
    store = SqliteStore(path)
    try:
        assert store.pragmas()["writer.user_version"] == m.LATEST
        records = store.read_after(0, 10)
        assert [(r.id, r.type, r.key) for r in records] == [
            (1, "Shotgun_Task_Change", "Task:1"),
            (2, "Shotgun_Task_Change", "Task:2"),
            (3, "Shotgun_Task_Change", "Task:3"),
        ]
        when = datetime(2024, 5, 1, 12, tzinfo=UTC)
        event = records[2].event
        assert (event.entity, event.project, event.new, event.occurred, event.received) == (
            Ref("Task", 3),
            Ref("Project", 70),
            "ip",
            when,
            when,
        )
        assert event.data == {"id": 3, "created_at": when}
        assert store.get_cursor("shotgrid:studio") == {"last_id": 3}
        assert store.register_group("plugins.notify", 0).position == 2
        rows = store.load_rows("plugins.notify")
        assert [(r.event_id, r.state, r.attempts, r.retry_at, r.consumers, r.error) for r in rows] == [
            (1, State.DEAD, 5, None, ("notify.on_task",), "boom"),
            (2, State.RETRY, 1, 99.5, ("notify.on_task",), "busy"),
        ]
        assert [r.event_id for _, r in store.dead_letters()] == [1]
        # the upgraded store works as a new one does: dedupe still holds, ids carry on
        again = Event(source="shotgrid:studio", source_id="3", type="Shotgun_Task_Change")
        fresh = Event(source="shotgrid:studio", source_id="4", type="Shotgun_Task_Change")
        assert store.append([again, fresh]).ids == (None, 4)
    finally:
        store.close()
    assert _version(path) == m.LATEST


def test_opening_an_up_to_date_store_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "again.db"
    store = SqliteStore(path)
    store.append([Event(source="s", source_id="1", type="t")], source="s", cursor=1)
    store.close()
    reopened = SqliteStore(path)
    try:
        assert reopened.last_id() == 1
        assert reopened.get_cursor("s") == 1
        assert reopened.pragmas()["writer.user_version"] == m.LATEST
    finally:
        reopened.close()


def test_a_store_newer_than_this_trackwire_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {m.LATEST + 7}")
    conn.close()
    with pytest.raises(MigrationError) as caught:
        SqliteStore(path)
    message = str(caught.value)
    assert f"schema version {m.LATEST + 7}" in message
    assert f"({m.LATEST})" in message
    assert _version(path) == m.LATEST + 7, "a refused store is left untouched"


def test_a_failing_migration_rolls_back_and_keeps_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.db"
    SqliteStore(path).close()
    broken = m.LATEST + 1
    monkeypatch.setattr(
        m, "MIGRATIONS", (*m.MIGRATIONS, (broken, "broken on purpose", "CREATE TABLE half (a); CREATE TABLE half (a)"))
    )
    monkeypatch.setattr(m, "LATEST", broken)
    with pytest.raises(MigrationError, match=f"migration {broken} \\(broken on purpose\\) failed"):
        SqliteStore(path)
    assert _version(path) == broken - 1
    assert "half" not in _tables(path)


@pytest.mark.parametrize(("synchronous", "level"), [("FULL", 2), ("NORMAL", 1)])
def test_wal_mode_and_the_synchronous_setting_are_on_for_writer_and_readers(
    tmp_path: Path, synchronous: str, level: int
) -> None:
    store = SqliteStore(tmp_path / "wal.db", synchronous=synchronous)
    try:
        pragmas = store.pragmas()
        assert pragmas["writer.journal_mode"] == "wal"
        assert pragmas["reader.journal_mode"] == "wal"
        assert pragmas["writer.synchronous"] == level
        assert pragmas["reader.synchronous"] == level
        assert int(str(pragmas["writer.busy_timeout"])) >= 1000
    finally:
        store.close()


def test_the_default_is_synchronous_full(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "default.db")
    try:
        assert store.pragmas()["writer.synchronous"] == 2
    finally:
        store.close()
