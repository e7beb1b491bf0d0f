"""Automation state in the embedded store: trigger buckets, firings and their action outcomes.

Its own connection to the database file (SQLite serialises writers). :meth:`commit` writes the
changed trigger state, the new firings and the ids of the events they came from in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackwire.automations.state import FiringRecord, JournalEntry, StateBatch
from trackwire.core.event import dumps, loads
from trackwire.core.triggers import StateKey
from trackwire.store.sqlite import automation_queries as q
from trackwire.store.sqlite.migrations import MIGRATIONS, open_migrated

__all__ = ["SqliteAutomationState"]


def _record(values: tuple[Any, ...]) -> FiringRecord:
    (ident, automation, path, bkey, fired_at, reason, events, start, end, triggering, status, outcomes, created,
     updated) = values  # fmt: skip
    return FiringRecord(
        ident, automation, path, bkey, fired_at, reason, tuple(loads(events)), (start, end), triggering, status,
        loads(outcomes), created, updated,
    )  # fmt: skip


class SqliteAutomationState:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._outcomes: list[tuple[str, str, str, str]] = []
        self._conn = open_migrated(self.path)
        # A database migrated past 2 before this migration existed still gets its tables (all IF NOT EXISTS).
        for number in (2, 6):
            script = next(s for n, _, s in MIGRATIONS if n == number)
            for statement in script.split(";"):
                if statement.strip():
                    self._conn.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def load_state(self) -> dict[StateKey, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(q.LOAD_STATE).fetchall()
        return {(a, p, k): loads(s) for a, p, k, s in rows}

    def state_of(self, automation: str) -> list[tuple[str, str, dict[str, Any]]]:
        with self._lock:
            rows = self._conn.execute(q.STATE_OF, (automation,)).fetchall()
        return [(p, k, loads(s)) for p, k, s in rows]

    def applied(self, after: int) -> set[int]:
        with self._lock:
            return {int(r[0]) for r in self._conn.execute(q.LOAD_APPLIED, (after,)).fetchall()}

    def journal(self) -> list[JournalEntry]:
        with self._lock:
            rows = self._conn.execute(q.LOAD_JOURNAL).fetchall()
        return [(None if e is None else int(e), float(at), int(low)) for e, at, low in rows]

    def commit(self, batch: StateBatch) -> list[str]:
        """Write the batch in one transaction; return the ids of the firings that were new."""
        stamp = datetime.now(UTC).isoformat()
        new: list[str] = []
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if batch.upserts:
                    conn.executemany(q.UPSERT_STATE, ((*k, v, stamp) for k, v in batch.upserts))
                if batch.deletes:
                    conn.executemany(q.DELETE_STATE, list(batch.deletes))
                for f in batch.firings:
                    cur = conn.execute(
                        q.INSERT_FIRING,
                        (f.id, f.automation, f.path, f.key, f.at, f.reason, dumps(list(f.events)), f.window[0],
                         f.window[1], f.triggering_event, stamp, stamp),
                    )  # fmt: skip
                    if cur.rowcount:
                        new.append(f.id)
                if batch.checkpoint:
                    conn.execute(q.CLEAR_JOURNAL)
                elif batch.journal:
                    conn.executemany(q.INSERT_STEP, batch.journal)
                if batch.applied:
                    conn.executemany(q.INSERT_APPLIED, [(i,) for i in batch.applied])
                if batch.prune_applied_upto is not None:
                    conn.execute(q.PRUNE_APPLIED, (batch.prune_applied_upto,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return new

    def get_firing(self, firing_id: str) -> FiringRecord | None:
        with self._lock:
            row = self._conn.execute(q.GET_FIRING, (firing_id,)).fetchone()
        return None if row is None else _record(row)

    def pending_firings(self) -> list[FiringRecord]:
        with self._lock:
            return [_record(r) for r in self._conn.execute(q.PENDING_FIRINGS).fetchall()]

    def firings(self, automation: str | None = None, limit: int = 50) -> list[FiringRecord]:
        with self._lock:
            if automation is None:
                rows = self._conn.execute(q.RECENT_FIRINGS, (limit,)).fetchall()
            else:
                rows = self._conn.execute(q.FIRINGS_OF, (automation, limit)).fetchall()
        return [_record(r) for r in rows]

    def firings_with(self, automation: str, first: int, last: int) -> list[FiringRecord]:
        with self._lock:
            rows = self._conn.execute(q.FIRINGS_WITH_EVENTS, (automation, first, last, first, last)).fetchall()
        return [_record(r) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for automation, status, n in self._conn.execute(q.COUNT_FIRINGS).fetchall():
                out.setdefault(automation, {})[status] = n
        return out

    def set_outcomes_many(self, items: Sequence[tuple[str, str, Sequence[dict[str, Any]]]]) -> None:
        stamp = datetime.now(UTC).isoformat()
        rows = [(status, dumps(list(outcomes)), stamp, firing_id) for firing_id, status, outcomes in items]
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(q.SET_OUTCOMES, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def set_outcomes(self, firing_id: str, status: str, outcomes: Sequence[dict[str, Any]]) -> None:
        """Record outcomes durably. Concurrent callers share one transaction: whoever holds the connection
        writes every outcome queued so far, so a burst of finished actions costs a few syncs, not one each."""
        stamp = datetime.now(UTC).isoformat()
        item = (status, dumps(list(outcomes)), stamp, firing_id)
        with self._queue_lock:
            self._outcomes.append(item)
        with self._lock:
            with self._queue_lock:
                if not any(i is item for i in self._outcomes):
                    return  # written by an earlier caller's transaction
                queued, self._outcomes = self._outcomes, []
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(q.SET_OUTCOMES, queued)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                with self._queue_lock:
                    self._outcomes[:0] = [i for i in queued if i is not item]
                raise
