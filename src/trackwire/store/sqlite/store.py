"""The SQLite adapter of :class:`trackwire.ports.Store`.

One writer connection (``BEGIN IMMEDIATE``, ``synchronous=FULL``) serialised by a lock, so ids commit
in id order and a reader never sees a gap that fills later; one reader connection per thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackwire.core.event import Event, decode_event, dumps, encode_event, loads, ordering_key
from trackwire.core.ledger import Checkpoint, DeliveryRow, State
from trackwire.errors import StoreError
from trackwire.ports import AppendResult, GroupRecord, LogRecord
from trackwire.store.sqlite import queries as q
from trackwire.store.sqlite.browse import SqliteBrowse
from trackwire.store.sqlite.migrations import migrate, use_wal

__all__ = ["SqliteStore"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _row(values: tuple[Any, ...]) -> DeliveryRow:
    event_id, key, state, attempts, retry_at, consumers, error, tb = values
    return DeliveryRow(event_id, key, State(state), attempts, retry_at, tuple(json.loads(consumers)), error, tb)


def _group(values: tuple[Any, ...]) -> GroupRecord:
    name, position, state, reason, generation, updated = values
    return GroupRecord(name, position, state, reason, generation, datetime.fromisoformat(updated))


class SqliteStore(SqliteBrowse):
    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            use_wal(self._writer)
            migrate(self._writer)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(f"PRAGMA synchronous={'FULL' if self._synchronous == 'FULL' else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @property
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._write_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._write_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            try:
                self._writer.execute("PRAGMA optimize")
            finally:
                self._writer.close()

    def checkpoint_wal(self) -> None:
        """Fold the WAL back into the database file (call when idle)."""
        with self._write_lock:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def pragmas(self) -> dict[str, object]:
        """The connection settings that make the store durable, as the writer and this thread's reader see them."""
        reader = self._reader
        out: dict[str, object] = {}
        with self._write_lock:
            for role, conn in (("writer", self._writer), ("reader", reader)):
                for name, query in q.PRAGMA_READS.items():
                    out[f"{role}.{name}"] = conn.execute(query).fetchone()[0]
        return out

    def data_version(self) -> int:
        """Changes whenever another connection (another process, say) commits."""
        (version,) = self._reader.execute("PRAGMA data_version").fetchone()
        return int(version)

    # -- the event log ---------------------------------------------------------------------------

    def append(self, events: Sequence[Event], *, source: str | None = None, cursor: Any = None) -> AppendResult:
        received = datetime.now(UTC)
        stamp = received.isoformat()
        rows = [
            (
                event.source,
                str(event.source_id),
                event.type,
                ordering_key(event),
                None if event.entity is None else event.entity.type,
                None if event.entity is None else str(event.entity.id),
                None if event.project is None else str(event.project.id),
                event.occurred.isoformat(),
                stamp,
                encode_event(event, event.received or received),
            )
            for event in events
        ]  # encoded before the write lock is taken: a concurrent reader or appender is not held up by it
        ids: list[int | None] = []
        with self._transaction() as conn:
            if rows:
                (before,) = conn.execute(q.LAST_ID).fetchone()
                conn.executemany(q.INSERT_EVENT, rows)  # one call: far cheaper than a statement per event
                given = {(s, i): n for n, s, i in conn.execute(q.IDS_AFTER, (before,))}
                # the first of two equal (source, source_id) in one batch got the id, as with one insert each
                ids = [given.pop((row[0], row[1]), None) for row in rows]
            if source is not None and cursor is not None:
                conn.execute(q.UPSERT_CURSOR, (source, dumps(cursor), stamp))
        return AppendResult(tuple(ids))

    def read_after(self, position: int, limit: int, types: Sequence[str] | None = None) -> list[LogRecord]:
        if limit < 1:
            return []
        conn = self._reader
        if types is None:
            rows = conn.execute(q.READ_AFTER, (position, limit)).fetchall()
        else:
            rows = []
            for event_type in dict.fromkeys(types):  # each type once, in case the caller repeats one
                rows.extend(conn.execute(q.READ_AFTER_TYPE, (event_type, position, limit)).fetchall())
            rows.sort(key=lambda r: r[0])
            del rows[limit:]
        return [LogRecord(r[0], r[1], r[2], r[3]) for r in rows]

    def get_event(self, event_id: int) -> Event | None:
        row = self._reader.execute(q.GET_EVENT, (event_id,)).fetchone()
        return None if row is None else decode_event(row[0], event_id)

    def get_records(self, event_ids: Sequence[int]) -> list[LogRecord]:
        conn = self._reader
        found = (conn.execute(q.GET_RECORD, (i,)).fetchone() for i in event_ids)
        return [LogRecord(r[0], r[1], r[2], r[3]) for r in found if r is not None]

    def last_id(self) -> int:
        return int(self._reader.execute(q.LAST_ID).fetchone()[0])

    def first_id(self) -> int:
        return int(self._reader.execute(q.FIRST_ID).fetchone()[0])

    def count_events(self) -> int:
        return int(self._reader.execute(q.COUNT_EVENTS).fetchone()[0])

    def get_cursor(self, source: str) -> Any:
        row = self._reader.execute(q.GET_CURSOR, (source,)).fetchone()
        return None if row is None else loads(row[0])

    def cursors(self) -> list[tuple[str, Any, str]]:
        return [(s, loads(c), u) for s, c, u in self._reader.execute(q.LIST_CURSORS).fetchall()]

    # -- groups and deliveries -------------------------------------------------------------------

    def register_group(self, name: str, start: int) -> GroupRecord:
        with self._transaction() as conn:
            conn.execute(q.INSERT_GROUP, (name, start, _now()))
            row = conn.execute(q.GET_GROUP, (name,)).fetchone()
        return _group(row)

    def get_group(self, name: str) -> GroupRecord | None:
        row = self._reader.execute(q.GET_GROUP, (name,)).fetchone()
        return None if row is None else _group(row)

    def groups(self) -> list[GroupRecord]:
        return [_group(r) for r in self._reader.execute(q.LIST_GROUPS).fetchall()]

    def set_group_state(self, name: str, state: str, reason: str | None = None) -> None:
        with self._transaction() as conn:
            conn.execute(q.SET_GROUP_STATE, (state, reason, _now(), name))

    def load_rows(self, group: str, states: Sequence[str] | None = None) -> list[DeliveryRow]:
        rows = [_row(r) for r in self._reader.execute(q.LOAD_ROWS, (group,)).fetchall()]
        if states is not None:
            rows = [r for r in rows if r.state in states]
        return rows

    def write_checkpoint(self, group: str, plan: Checkpoint) -> None:
        self.write_checkpoints([(group, plan)])

    def write_checkpoints(self, plans: Sequence[tuple[str, Checkpoint]]) -> None:
        """Several groups' checkpoints in one transaction (one fsync for all)."""
        stamp = _now()
        with self._transaction() as conn:
            for group, plan in plans:
                self._write_plan(conn, group, plan, stamp)

    @staticmethod
    def _write_plan(conn: sqlite3.Connection, group: str, plan: Checkpoint, stamp: str) -> None:
        if plan.upserts:
            conn.executemany(
                q.UPSERT_ROW,
                [
                    (
                        group,
                        r.event_id,
                        r.key,
                        r.state.value,
                        r.attempts,
                        r.retry_at,
                        json.dumps(list(r.consumers)),
                        r.error,
                        r.traceback,
                        stamp,
                    )
                    for r in plan.upserts
                ],
            )
        if plan.deletes:
            conn.executemany(q.DELETE_ROW, [(group, event_id) for event_id in plan.deletes])
        if conn.execute(q.SET_GROUP_POSITION, (plan.position, stamp, group)).rowcount != 1:
            raise StoreError(f"no group {group!r}: register it before writing its progress")

    def dead_letters(
        self, group: str | None = None, *, after: tuple[str, int] | None = None, limit: int = 100
    ) -> list[tuple[str, DeliveryRow]]:
        if group is None:
            start = after or ("", 0)
            rows = self._reader.execute(q.DEAD_ALL, (*start, limit)).fetchall()
        else:
            rows = self._reader.execute(q.DEAD_OF_GROUP, (group, after[1] if after else 0, limit)).fetchall()
        return [(r[0], _row(r[1:])) for r in rows]

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for grp, state, n in self._reader.execute(q.COUNT_BY_STATE).fetchall():
            counts.setdefault(grp, {})[state] = n
        return counts

    def requeue_dead(self, group: str, event_ids: Sequence[int] | None = None) -> int:
        stamp = _now()
        with self._transaction() as conn:
            if event_ids is None:
                changed = conn.execute(q.REQUEUE_DEAD_ALL, (stamp, group)).rowcount
            else:
                changed = sum(conn.execute(q.REQUEUE_DEAD_ONE, (stamp, group, i)).rowcount for i in event_ids)
            conn.execute(q.BUMP_GENERATION, (stamp, group))
        return changed

    def discard_dead(self, group: str, event_ids: Sequence[int] | None = None) -> int:
        with self._transaction() as conn:
            if event_ids is None:
                return int(conn.execute(q.DISCARD_DEAD_ALL, (group,)).rowcount)
            return sum(conn.execute(q.DISCARD_DEAD_ONE, (group, i)).rowcount for i in event_ids)

    def replay_range(self, group: str, first: int, last: int, consumers: Sequence[str] = ()) -> int:
        stamp = _now()
        with self._transaction() as conn:
            changed = conn.execute(q.REPLAY_RANGE, (group, json.dumps(list(consumers)), stamp, first, last)).rowcount
            conn.execute(q.BUMP_GENERATION, (stamp, group))
        return int(changed)
