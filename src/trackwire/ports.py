"""The ports the engine, plugins, automations and workflows depend on.

Adapters live in :mod:`trackwire.store` (SQLite, in-memory; PostgreSQL later). One contract test
suite (``tests/integration/test_store_contract.py``) runs against every adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from trackwire.core.event import Event, decode_event
from trackwire.core.jobs import Job, JobState, Settlement
from trackwire.core.ledger import Checkpoint, DeliveryRow

__all__ = [
    "AppendResult",
    "Clock",
    "DeliveryQueue",
    "EventStore",
    "GroupRecord",
    "JobStore",
    "LogRecord",
    "Store",
]


@dataclass(slots=True)
class LogRecord:
    """An event as read back from the log: the indexed columns, and the body decoded on demand."""

    id: int
    type: str
    key: str
    body: str
    _event: Event | None = field(default=None, repr=False)

    @property
    def event(self) -> Event:
        if self._event is None:
            self._event = decode_event(self.body, self.id)
        return self._event


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Ids given to the appended events, ``None`` where (source, source_id) was already stored."""

    ids: tuple[int | None, ...]

    @property
    def new(self) -> tuple[int, ...]:
        return tuple(i for i in self.ids if i is not None)


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """The durable state of one ordering group (a plugin, automation or workflow consumer)."""

    name: str
    position: int
    state: str
    reason: str | None
    generation: int
    updated: datetime | None


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


@runtime_checkable
class EventStore(Protocol):
    """The durable, ordered event log, plus each source's cursor."""

    def append(self, events: Sequence[Event], *, source: str | None = None, cursor: Any = None) -> AppendResult:
        """Store ``events`` (skipping known (source, source_id)) and ``cursor`` in one transaction.

        Once this returns, the events and the cursor survive a crash.
        """

    def read_after(self, position: int, limit: int, types: Sequence[str] | None = None) -> list[LogRecord]:
        """Up to ``limit`` events with id > ``position`` in id order, optionally only of ``types``."""

    def get_event(self, event_id: int) -> Event | None: ...

    def get_records(self, event_ids: Sequence[int]) -> list[LogRecord]:
        """The stored events with these ids (unknown ids are left out)."""

    def last_id(self) -> int: ...

    def get_cursor(self, source: str) -> Any: ...

    def close(self) -> None: ...


@runtime_checkable
class DeliveryQueue(Protocol):
    """Per-group progress and the rows of unfinished or dead deliveries."""

    def register_group(self, name: str, start: int) -> GroupRecord:
        """Return the group's state, creating it at position ``start`` if it is new."""

    def groups(self) -> list[GroupRecord]: ...

    def set_group_state(self, name: str, state: str, reason: str | None = None) -> None: ...

    def load_rows(self, group: str, states: Sequence[str] | None = None) -> list[DeliveryRow]: ...

    def write_checkpoint(self, group: str, plan: Checkpoint) -> None:
        """Apply a ledger checkpoint (position, upserts, deletes) in one transaction."""

    def dead_letters(
        self, group: str | None = None, *, after: tuple[str, int] | None = None, limit: int = 100
    ) -> list[tuple[str, DeliveryRow]]: ...

    def requeue_dead(self, group: str, event_ids: Sequence[int] | None = None) -> int:
        """Turn dead rows back into pending ones (all of the group's if ``event_ids`` is None)."""

    def discard_dead(self, group: str, event_ids: Sequence[int] | None = None) -> int: ...

    def replay_range(self, group: str, first: int, last: int, consumers: Sequence[str] = ()) -> int:
        """Queue every stored event with ``first <= id <= last`` for ``group`` (or only ``consumers``)."""


class Store(EventStore, DeliveryQueue, Protocol):
    """What one adapter provides: both ports over one database."""


@runtime_checkable
class JobStore(Protocol):
    """Hosted-action jobs (:mod:`trackwire.core.jobs`): every change is conditional, so two runners never
    both own a job and a runner that lost its job (timed out, settled as stale) learns it."""

    def insert(self, job: Job) -> Job:
        """Store a new job; returns it with its ``seq``."""

    def get(self, job_id: str) -> Job | None: ...

    def claim(self, owner: str, now: float) -> Job | None:
        """The oldest queued job, now running for ``owner`` (attempts + 1), or ``None``."""

    def report(self, job_id: str, owner: str, progress: float, message: str, now: float) -> bool:
        """Record progress (and a heartbeat); ``False`` when the job is no longer running for ``owner``."""

    def finish(
        self,
        job_id: str,
        owner: str,
        state: JobState,
        message: str,
        result: dict[str, Any] | None,
        error: str | None,
        now: float,
    ) -> bool:
        """End a job ``owner`` runs; ``False`` (and nothing written) when it is no longer its."""

    def heartbeat(self, owner: str, now: float) -> int:
        """Mark every job running for ``owner`` alive; returns how many."""

    def running(self) -> list[Job]: ...

    def settle(self, job: Job, settlement: Settlement, now: float) -> bool:
        """Requeue or interrupt a stale running job, if it is still as ``job`` saw it (same owner and beat)."""

    def recent(self, limit: int = 50, before: int | None = None) -> list[Job]:
        """Jobs newest first, those with ``seq < before`` when given (paging by key)."""

    def prune(self, finished_before: float) -> int:
        """Delete the jobs that ended before ``finished_before``; returns how many."""

    def close(self) -> None: ...
