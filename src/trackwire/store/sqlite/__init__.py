"""The embedded store: SQLite in WAL mode, one writer connection, a reader per thread."""

from __future__ import annotations

from trackwire.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
