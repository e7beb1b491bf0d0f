"""Automation state in the embedded store: trigger buckets, firings and their action outcomes.

Its own connection to the database file (SQLite serialises writers). :meth:`commit` writes the new firings,
the journal steps and the ids of the events they came from in one transaction.

A checkpoint (every changed trigger-state entry, ~90,000 rows after a large burst) is not one transaction:
held for ~0.5 s, SQLite's one write lock would stall every other commit. :meth:`start_checkpoint` commits the
batch's own firings and journal steps and notes the journal position the checkpoint covers (its last step);
the returned :class:`ChunkedCheckpoint` then writes, a short transaction per step:

1. tidying: rows the current checkpoint still has in staging are folded into ``automation_state``, and rows of
   checkpoints whose write was cut short (a crash) are deleted;
2. the entries, a chunk at a time, into ``automation_staged`` under the new checkpoint's number, which every
   reader ignores while it is not current;
3. the flip: one row update makes the new number current and moves the journal position, so readers see the
   new entries overlaid on ``automation_state`` and only the steps journaled after the checkpoint's batch;
4. folding the new rows into ``automation_state`` and deleting the journal steps the checkpoint covers, in
   chunks (neither changes what a reader sees).

Other commits (evaluation steps, firings, outcomes) take turns with these steps. A kill before the flip leaves
the previous checkpoint and its whole journal (the staged rows are ignored, and deleted by the next write); a
kill after it leaves the new checkpoint and the steps after its position.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackwire.automations.state import FiringRecord, JournalEntry, StateBatch
from trackwire.core.event import dumps, loads
from trackwire.core.triggers import StateKey
from trackwire.store.sqlite import automation_queries as q
from trackwire.store.sqlite.migrations import MIGRATIONS, open_migrated

__all__ = ["ChunkedCheckpoint", "SqliteAutomationState"]


def _record(values: tuple[Any, ...]) -> FiringRecord:
    (ident, automation, path, bkey, fired_at, reason, events, start, end, triggering, status, outcomes, created,
     updated) = values  # fmt: skip
    return FiringRecord(
        ident, automation, path, bkey, fired_at, reason, tuple(loads(events)), (start, end), triggering, status,
        loads(outcomes), created, updated,
    )  # fmt: skip


class SqliteAutomationState:
    def __init__(self, path: Path | str, chunk: int = 2_000) -> None:
        self.path = Path(path)
        self.chunk = chunk  # rows per transaction of a checkpoint write
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._outcomes: list[tuple[str, str, str, str]] = []
        self._conn = open_migrated(self.path)
        # A database migrated past 2 before this migration existed still gets its tables (all IF NOT EXISTS).
        for number in (2, 6, 7):
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

    def snapshot(self) -> tuple[dict[StateKey, dict[str, Any]], list[JournalEntry]]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")  # one read transaction: both reads see the same checkpoint
            try:
                entries = conn.execute(q.LOAD_STATE).fetchall()
                steps = conn.execute(q.LOAD_JOURNAL).fetchall()
            finally:
                conn.execute("COMMIT")
        return (
            {(a, p, k): loads(s) for a, p, k, s in entries},
            [(None if e is None else int(e), float(at), int(low)) for e, at, low in steps],
        )

    def commit(self, batch: StateBatch) -> list[str]:
        """Write a batch in one transaction (a checkpoint batch: and its whole checkpoint, a step at a time);
        return the ids of the firings that were new."""
        if batch.checkpoint:
            new, write = self.start_checkpoint(batch)
            while write.step():
                pass
            return new
        with self._transaction() as conn:
            return self._write_batch(conn, batch)

    def start_checkpoint(self, batch: StateBatch) -> tuple[list[str], ChunkedCheckpoint]:
        """Commit the batch's firings, journal steps and event ids, and the position the checkpoint covers (the
        last step journaled) in one transaction; the returned write does the rest (see the module docstring)."""
        with self._transaction() as conn:
            new = self._write_batch(conn, batch)
            (number,) = conn.execute(q.NEXT_CHECKPOINT).fetchone()
            (upto,) = conn.execute(q.JOURNAL_END).fetchone()
        return new, ChunkedCheckpoint(self, int(number), int(upto), batch.upserts, batch.deletes)

    def _write_batch(self, conn: sqlite3.Connection, batch: StateBatch) -> list[str]:
        if (batch.upserts or batch.deletes) and not batch.checkpoint:
            raise ValueError("trigger-state entries are written only as a checkpoint")
        stamp = datetime.now(UTC).isoformat()
        new: list[str] = []
        for f in batch.firings:
            cur = conn.execute(
                q.INSERT_FIRING,
                (f.id, f.automation, f.path, f.key, f.at, f.reason, dumps(list(f.events)), f.window[0],
                 f.window[1], f.triggering_event, stamp, stamp),
            )  # fmt: skip
            if cur.rowcount:
                new.append(f.id)
        if batch.journal:
            conn.executemany(q.INSERT_STEP, batch.journal)
        if batch.applied:
            conn.executemany(q.INSERT_APPLIED, [(i,) for i in batch.applied])
        if batch.prune_applied_upto is not None:
            conn.execute(q.PRUNE_APPLIED, (batch.prune_applied_upto,))
        return new

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # -- the steps of a checkpoint write (each one transaction; see ChunkedCheckpoint) ---------------------

    def _current(self) -> tuple[int, int]:
        with self._lock:
            current, upto = self._conn.execute(q.CHECKPOINT).fetchone()
        return int(current), int(upto)

    def _stage(self, rows: list[tuple[int, str, str, str, str | None]]) -> None:
        with self._transaction() as conn:
            conn.executemany(q.STAGE, rows)

    def _flip(self, number: int, upto: int) -> None:
        with self._transaction() as conn:
            conn.execute(q.FLIP, (number, upto))

    def _fold_chunk(self, number: int) -> bool:
        """Fold up to ``chunk`` staged rows of checkpoint ``number`` into automation_state; False when none
        were left."""
        stamp = datetime.now(UTC).isoformat()
        with self._transaction() as conn:
            bound = conn.execute(q.FOLD_BOUND, (number, self.chunk - 1)).fetchone()
            more = bound is not None
            if bound is None:
                bound = conn.execute(q.FOLD_LAST, (number,)).fetchone()
                if bound is None:
                    return False
            conn.execute(q.FOLD_UPSERT, (stamp, number, *bound))
            conn.execute(q.FOLD_DELETE, (number, *bound))
            conn.execute(q.FOLD_UNSTAGE, (number, *bound))
        return more

    def _drop_abandoned_chunk(self, current: int, writing: int) -> bool:
        with self._transaction() as conn:
            return bool(conn.execute(q.ABANDONED_CHUNK, (current, writing, self.chunk)).rowcount == self.chunk)

    def _prune_journal_chunk(self, upto: int) -> bool:
        with self._transaction() as conn:
            return bool(conn.execute(q.PRUNE_JOURNAL_CHUNK, (upto, 4 * self.chunk)).rowcount)

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


class ChunkedCheckpoint:
    """The write of one checkpoint's entries after :meth:`SqliteAutomationState.start_checkpoint`: each
    ``step`` is one short transaction (see the module docstring for the order and why it is crash-safe)."""

    def __init__(
        self,
        owner: SqliteAutomationState,
        number: int,
        upto: int,
        upserts: Collection[tuple[StateKey, str]],
        deletes: Collection[StateKey],
    ) -> None:
        self.number = number  # this checkpoint's number in automation_staged
        self.upto = upto  # the last journal step whose effect its entries hold
        self.flipped = False
        self._owner = owner
        self._upserts = upserts  # a view of the builder's rows (no copy on the event loop); grouped here
        self._deletes = deletes
        self._steps = self._run()

    def step(self) -> bool:
        """Run the next step of the write (at most one short transaction); False when nothing is left."""
        return next(self._steps, False)

    def _run(self) -> Iterator[bool]:
        owner, number = self._owner, self.number
        current, _ = owner._current()
        while owner._fold_chunk(current):  # the current checkpoint's overlay must be empty before the flip
            yield True
        while owner._drop_abandoned_chunk(current, number):
            yield True
        # The rows are staged in key order, so that each chunk fills a few neighbouring pages of the staging
        # table: in the builder's (hash) order every chunk rewrote pages all over it, ~7 times the work of the
        # whole write. They are grouped by trigger (automation, path) a step at a time (steps without a
        # transaction: commits queued meanwhile go first), then sorted a group at a time, so the state thread
        # never holds the GIL for one long sort.
        groups: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
        entries = itertools.chain(self._upserts, ((key, None) for key in self._deletes))
        for count, ((automation, path, bkey), value) in enumerate(entries, 1):
            groups.setdefault((automation, path), []).append((bkey, value))
            if count % (5 * owner.chunk) == 0:
                yield True
        rows = _in_key_order(number, groups)
        while chunk := list(itertools.islice(rows, owner.chunk)):
            owner._stage(chunk)
            yield True
        owner._flip(number, self.upto)
        self.flipped = True
        yield True
        while owner._fold_chunk(number):
            yield True
        while owner._prune_journal_chunk(self.upto):
            yield True


def _in_key_order(
    number: int, groups: dict[tuple[str, str], list[tuple[str, str | None]]]
) -> Iterator[tuple[int, str, str, str, str | None]]:
    for automation, path in sorted(groups):
        group = groups.pop((automation, path))
        group.sort(key=_first)
        for bkey, value in group:
            yield number, automation, path, bkey, value


def _first(item: tuple[str, str | None]) -> str:
    return item[0]
