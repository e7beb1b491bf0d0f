"""Migrations are numbered once each and applied in number order, whatever order they are listed in."""

from __future__ import annotations

import sqlite3

from trackwire.store.sqlite.migrations import LATEST, MIGRATIONS, migrate, use_wal


def test_every_migration_has_its_own_number_and_the_latest_is_the_highest() -> None:
    numbers = [number for number, _, _ in MIGRATIONS]
    assert len(numbers) == len(set(numbers))
    assert max(numbers) == LATEST


def test_a_fresh_database_gets_every_migration_in_number_order() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert migrate(conn) == LATEST
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events", "source_cursors", "groups", "deliveries"} <= tables
    assert migrate(conn) == LATEST, "a second run changes nothing"


def test_processes_opening_a_fresh_store_at_once_all_succeed(tmp_path: object) -> None:
    """Eight openings of one new file from four warm processes, twenty times over: without ``use_wal``'s retry
    about one round in four failed with "database is locked" (the journal-mode switch does not wait)."""
    import multiprocessing
    from pathlib import Path

    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        for round_ in range(20):
            path = Path(str(tmp_path)) / f"race-{round_}.db"
            versions = pool.map(_open_and_migrate, [str(path)] * 8)
            assert versions == [LATEST] * 8, f"round {round_}"


def _open_and_migrate(path: str) -> int:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        use_wal(conn)
        return migrate(conn)
    finally:
        conn.close()
