"""What the web app reads and changes: the store, and the live daemon when there is one.

Embedded in the daemon, live state (what each group holds in memory, its matchers, its worker's
numbers) is read on the daemon's event loop; store reads and writes run in threads. Standalone
(``trackwire web``) there is no daemon: everything comes from the store, and operator actions are
written there exactly as the CLI writes them; a running daemon picks them up within a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, runtime_checkable

from trackwire.ports import GroupRecord, JobStore, Store
from trackwire.store.sqlite.browse import EventQuery, FoundEvent, StoredDelivery

if TYPE_CHECKING:
    from datetime import datetime

    from trackwire.runtime.daemon import Daemon
    from trackwire.runtime.group import GroupRunner

__all__ = ["Backend", "BrowsableStore", "UnknownGroup"]

P = ParamSpec("P")
T = TypeVar("T")


@runtime_checkable
class BrowsableStore(Protocol):
    """The read queries the dashboard needs beyond the ports (the SQLite adapter has them)."""

    def search_events(self, query: EventQuery) -> list[FoundEvent]: ...

    def first_id_received_at(self, moment: datetime, low: int | None = None) -> int: ...

    def events_per_minute(self, since: datetime, minutes: int = 60) -> dict[str, int]: ...

    def events_per_source(self, after: int, upto: int) -> dict[str, int]: ...

    def distinct_sources(self, limit: int = 200) -> list[str]: ...

    def distinct_types(self, limit: int = 500) -> list[str]: ...

    def get_delivery(self, group: str, event_id: int) -> StoredDelivery | None: ...

    def group_rows(self, group: str, after: int = 0, limit: int = 100) -> list[StoredDelivery]: ...

    def last_error(self, group: str) -> StoredDelivery | None: ...

    def recent_failures(self, since: datetime, limit: int = 50) -> tuple[int, list[StoredDelivery]]: ...

    def delivery_counts(self) -> dict[str, dict[str, int]]: ...

    def cursors(self) -> list[tuple[str, Any, str]]: ...


class UnknownGroup(LookupError):
    """An action named a group the store does not know."""


@dataclass
class Backend:
    """The store (and maybe a daemon) behind one web app."""

    store_source: Callable[[], Store]
    daemon: Daemon | None = None
    started: float = field(default_factory=time.time)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # called when the app's server stops (the hosted-action job runner's stop)
    closers: list[Callable[[], None]] = field(default_factory=list)
    _jobs: JobStore | None = field(default=None, repr=False)

    @classmethod
    def for_daemon(cls, daemon: Daemon) -> Backend:
        def store() -> Store:
            if daemon.store is None:
                raise RuntimeError("the daemon has not opened its store yet")
            return daemon.store

        return cls(store, daemon, daemon.started, daemon.stop_event)

    @classmethod
    def for_store(cls, store: Store) -> Backend:
        return cls(lambda: store)

    @property
    def store(self) -> Store:
        return self.store_source()

    @property
    def browse(self) -> BrowsableStore | None:
        store = self.store
        return store if isinstance(store, BrowsableStore) else None

    @property
    def jobs(self) -> JobStore:
        """Hosted-action jobs, beside the store (opened on first use)."""
        if self._jobs is None:
            from trackwire.store import open_jobs

            self._jobs = open_jobs(self.store)
        return self._jobs

    def close(self) -> None:
        """Stop what the app started (the job runner), then close the job store."""
        for close in self.closers:
            close()
        self.closers.clear()
        if self._jobs is not None:
            self._jobs.close()
            self._jobs = None

    @property
    def live(self) -> bool:
        return self.daemon is not None

    def runner(self, name: str) -> GroupRunner | None:
        return None if self.daemon is None else self.daemon.runners.get(name)

    def runners(self) -> dict[str, GroupRunner]:
        return {} if self.daemon is None else dict(self.daemon.runners)

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a (blocking) store call in a thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def ready(self) -> bool:
        if self.daemon is None:
            return True
        return self.daemon.store is not None and all(r.worker is not None for r in self.daemon.runners.values())

    # -- operator actions, written to the store like the CLI writes them ------------------------

    def _group(self, name: str) -> GroupRecord:
        for record in self.store.groups():
            if record.name == name:
                return record
        raise UnknownGroup(name)

    def replay_dead(self, group: str, event_ids: list[int] | None) -> int:
        self._group(group)
        return self.store.requeue_dead(group, event_ids)

    def discard_dead(self, group: str, event_ids: list[int] | None) -> int:
        self._group(group)
        return self.store.discard_dead(group, event_ids)

    def reactivate(self, group: str) -> None:
        self._group(group)
        self.store.set_group_state(group, "active", None)

    def replay_range(self, group: str, first: int, last: int | None, consumer: str | None, chunk: int = 10_000) -> int:
        self._group(group)
        end = last if last is not None else self.store.last_id()
        total = 0
        start = max(1, first)
        while start <= end:
            stop = min(end, start + chunk - 1)
            total += self.store.replay_range(group, start, stop, (consumer,) if consumer else ())
            start = stop + 1
        return total
