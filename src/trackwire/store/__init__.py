"""Adapters for the store ports: embedded SQLite (default) and in-memory (for tests)."""

from __future__ import annotations

from pathlib import Path

from trackwire.errors import ConfigError
from trackwire.ports import JobStore, Store

__all__ = ["open_jobs", "open_store"]


def open_store(url: str, *, base: Path | None = None) -> Store:
    """Open the store a URL names: ``sqlite:///path/to.db``, a bare path, or ``memory://``."""
    if url.startswith("memory://"):
        from trackwire.store.memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
    elif "://" in url:
        raise ConfigError(f"unsupported store URL {url!r}: use sqlite:///path/to/trackwire.db", key="store.url")
    else:
        path = Path(url)
    if base is not None and not path.is_absolute():
        path = base / path
    from trackwire.store.sqlite import SqliteStore

    return SqliteStore(path)


def open_jobs(store: Store) -> JobStore:
    """The hosted-action jobs kept beside ``store``: in its SQLite file, or in memory for a memory store."""
    from trackwire.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        from trackwire.store.sqlite.jobs import SqliteJobs

        return SqliteJobs(store.path)
    from trackwire.store.memory_jobs import MemoryJobs

    return MemoryJobs()
