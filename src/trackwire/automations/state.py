"""The port for durable automation state, and an in-memory adapter (dry runs, tests, non-SQLite stores).

The SQLite adapter is :class:`trackwire.store.sqlite.automation_state.SqliteAutomationState`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from trackwire.core.event import dumps, loads
from trackwire.core.triggers import Firing, StateKey

__all__ = ["AutomationState", "CheckpointWrite", "FiringRecord", "JournalEntry", "MemoryAutomationState", "StateBatch"]


@dataclass(frozen=True, slots=True)
class FiringRecord:
    """A recorded firing: what caused it, and each action's outcome (``status``: pending/succeeded/failed)."""

    id: str
    automation: str
    path: str
    key: str
    at: float
    reason: str
    events: tuple[int, ...]
    window: tuple[float, float]
    triggering_event: int | None
    status: str
    outcomes: list[dict[str, Any]]
    created: str
    updated: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "automation": self.automation,
            "trigger": self.path,
            "key": self.key,
            "at": self.at,
            "reason": self.reason,
            "events": list(self.events),
            "window": list(self.window),
            "triggering_event": self.triggering_event,
            "status": self.status,
            "outcomes": self.outcomes,
            "created": self.created,
        }


JournalEntry = tuple[int | None, float, int]
"""One evaluation step, in order: ``(event id, now, low water)`` for an event, ``(None, now, 0)`` for a sweep."""


@dataclass(frozen=True, slots=True)
class StateBatch:
    """One durable write: new firings, evaluated events and the journal of evaluation steps since the last
    take; a checkpoint batch also carries the changed state entries (JSON text) and removed ones (only a
    checkpoint writes entries). The checkpoint holds the state after every step journaled up to and including
    the batch's own, so once it is current those steps are no longer replayed."""

    upserts: Collection[tuple[StateKey, str]] = ()  # e.g. a finished checkpoint's ``dict.items()``
    deletes: tuple[StateKey, ...] = ()
    firings: tuple[Firing, ...] = ()
    applied: tuple[int, ...] = ()
    prune_applied_upto: int | None = None
    journal: tuple[JournalEntry, ...] = ()
    checkpoint: bool = False


class CheckpointWrite(Protocol):
    """The rest of a checkpoint after ``AutomationState.start_checkpoint``, written a short transaction per
    ``step`` so other commits go on between steps. Until ``flipped``, the durable state is the previous
    checkpoint and its journal; from then on, this checkpoint and the steps journaled after its batch."""

    @property
    def flipped(self) -> bool:
        """The checkpoint is the current one (later steps only tidy up)."""

    def step(self) -> bool:
        """Write the next part; False when nothing is left."""


class AutomationState(Protocol):
    def load_state(self) -> dict[StateKey, dict[str, Any]]: ...

    def state_of(self, automation: str) -> list[tuple[str, str, dict[str, Any]]]: ...

    def applied(self, after: int) -> set[int]: ...

    def journal(self) -> list[JournalEntry]:
        """The evaluation steps since the last checkpoint, in order (replayed over ``load_state`` at start)."""

    def snapshot(self) -> tuple[dict[StateKey, dict[str, Any]], list[JournalEntry]]:
        """``load_state`` and ``journal`` as of one moment: read apart, a checkpoint made current between the
        two reads would pair the old entries with the shortened journal (a reader in another process)."""

    def commit(self, batch: StateBatch) -> list[str]:
        """Apply the batch; return the ids of firings not recorded before. Without ``checkpoint`` the batch is
        one transaction; a checkpoint batch is ``start_checkpoint`` and every step of its write."""

    def start_checkpoint(self, batch: StateBatch) -> tuple[list[str], CheckpointWrite]:
        """Commit the checkpoint batch's firings, journal and event ids in one transaction (as ``commit`` does
        a batch without ``checkpoint``) and return their new firing ids and the write of its state entries,
        which covers every step journaled so far. Only one checkpoint write at a time: finish it (or give it
        up) before the next ``start_checkpoint``."""

    def get_firing(self, firing_id: str) -> FiringRecord | None: ...

    def pending_firings(self) -> list[FiringRecord]: ...

    def firings(self, automation: str | None = None, limit: int = 50) -> list[FiringRecord]: ...

    def firings_with(self, automation: str, first: int, last: int) -> list[FiringRecord]:
        """The automation's firings caused by any event with an id from ``first`` to ``last``."""

    def counts(self) -> dict[str, dict[str, int]]: ...

    def set_outcomes(self, firing_id: str, status: str, outcomes: Sequence[dict[str, Any]]) -> None: ...

    def set_outcomes_many(self, items: Sequence[tuple[str, str, Sequence[dict[str, Any]]]]) -> None:
        """Several ``set_outcomes`` in one transaction."""

    def close(self) -> None: ...


@dataclass
class MemoryAutomationState:
    """Keeps everything in dicts; same behaviour as the SQLite adapter, without durability."""

    state: dict[StateKey, str] = field(default_factory=dict)
    records: dict[str, FiringRecord] = field(default_factory=dict)
    applied_ids: set[int] = field(default_factory=set)
    steps: list[JournalEntry] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load_state(self) -> dict[StateKey, dict[str, Any]]:
        return {k: loads(v) for k, v in self.state.items()}

    def state_of(self, automation: str) -> list[tuple[str, str, dict[str, Any]]]:
        return sorted((k[1], k[2], loads(v)) for k, v in self.state.items() if k[0] == automation)

    def applied(self, after: int) -> set[int]:
        return {i for i in self.applied_ids if i > after}

    def journal(self) -> list[JournalEntry]:
        return list(self.steps)

    def snapshot(self) -> tuple[dict[StateKey, dict[str, Any]], list[JournalEntry]]:
        return self.load_state(), self.journal()

    def commit(self, batch: StateBatch) -> list[str]:
        stamp = datetime.now(UTC).isoformat()
        new: list[str] = []
        with self._lock:
            if batch.checkpoint:
                self.steps.clear()
            else:
                self.steps.extend(batch.journal)
            for key, value in batch.upserts:
                self.state[key] = value
            for key in batch.deletes:
                self.state.pop(key, None)
            for f in batch.firings:
                if f.id not in self.records:
                    self.records[f.id] = FiringRecord(
                        f.id, f.automation, f.path, f.key, f.at, f.reason, f.events, f.window, f.triggering_event,
                        "pending", [], stamp, stamp,
                    )  # fmt: skip
                    new.append(f.id)
            self.applied_ids.update(batch.applied)
            if batch.prune_applied_upto is not None:
                self.applied_ids = {i for i in self.applied_ids if i > batch.prune_applied_upto}
        return new

    def start_checkpoint(self, batch: StateBatch) -> tuple[list[str], CheckpointWrite]:
        return self.commit(batch), _Written()

    def get_firing(self, firing_id: str) -> FiringRecord | None:
        return self.records.get(firing_id)

    def pending_firings(self) -> list[FiringRecord]:
        return [r for r in self.records.values() if r.status == "pending"]

    def firings(self, automation: str | None = None, limit: int = 50) -> list[FiringRecord]:
        found = [r for r in self.records.values() if automation is None or r.automation == automation]
        return sorted(found, key=lambda r: (r.created, r.id), reverse=True)[:limit]

    def firings_with(self, automation: str, first: int, last: int) -> list[FiringRecord]:
        found = [
            r
            for r in self.records.values()
            if r.automation == automation
            and (any(first <= i <= last for i in r.events) or first <= (r.triggering_event or 0) <= last)
        ]
        return sorted(found, key=lambda r: (r.at, r.id))

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.records.values():
            out.setdefault(r.automation, {}).setdefault(r.status, 0)
            out[r.automation][r.status] += 1
        return out

    def set_outcomes(self, firing_id: str, status: str, outcomes: Sequence[dict[str, Any]]) -> None:
        record = self.records[firing_id]
        self.records[firing_id] = replace(
            record, status=status, outcomes=loads(dumps(list(outcomes))), updated=datetime.now(UTC).isoformat()
        )

    def set_outcomes_many(self, items: Sequence[tuple[str, str, Sequence[dict[str, Any]]]]) -> None:
        for firing_id, status, outcomes in items:
            self.set_outcomes(firing_id, status, outcomes)

    def close(self) -> None:
        return None


class _Written:
    """A checkpoint written whole by ``start_checkpoint`` (in memory, nothing is worth splitting)."""

    flipped = True

    def step(self) -> bool:
        return False
