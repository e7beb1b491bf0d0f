"""Workflow runs in the embedded store: the ``workflow_runs`` projection and each run's records.

Its own connection to the same database file (SQLite serialises the writers); the records
themselves are ordinary events appended through :class:`~trackwire.store.sqlite.SqliteStore`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackwire.core.event import dumps, loads
from trackwire.ports import LogRecord
from trackwire.store.sqlite import workflow_queries as q
from trackwire.store.sqlite.migrations import open_migrated

__all__ = ["RunRow", "SqliteWorkflowRuns"]


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    flow: str
    origin: str
    mode: str
    status: str
    recovers: str | None
    definition: dict[str, Any]
    triggers: list[list[str]]
    reason: str | None
    created: str
    updated: str

    def to_json(self, *, definition: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "flow": self.flow,
            "origin": self.origin,
            "mode": self.mode,
            "status": self.status,
            "recovers": self.recovers,
            "reason": self.reason,
            "created": self.created,
            "updated": self.updated,
        }
        if definition:
            out["definition"] = self.definition
        return out


def _row(values: tuple[Any, ...]) -> RunRow:
    run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated = values
    return RunRow(run_id, flow, origin, mode, status, recovers, loads(definition), loads(triggers), reason, created,
                  updated)  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteWorkflowRuns:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_migrated(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            return int(self._conn.execute(sql, params).rowcount)

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def insert(
        self,
        run_id: str,
        flow: str,
        *,
        origin: str,
        mode: str,
        recovers: str | None,
        definition: dict[str, Any],
        triggers: list[list[str]],
    ) -> bool:
        stamp = _now()
        params = (run_id, flow, origin, mode, recovers, dumps(definition), dumps(triggers), stamp, stamp)
        return self._write(q.INSERT_RUN, params) == 1

    def set_status(self, run_id: str, status: str, reason: str | None = None) -> None:
        self._write(q.SET_RUN_STATUS, (status, reason, _now(), run_id))

    def get(self, run_id: str) -> RunRow | None:
        rows = self._read(q.GET_RUN, (run_id,))
        return _row(rows[0]) if rows else None

    def runs(
        self, *, flow: str | None = None, status: str | None = None, limit: int = 100, newest_first: bool = False
    ) -> list[RunRow]:
        """Runs of a flow and/or status; a status alone lists oldest first (recovery's order) unless
        ``newest_first``."""
        if flow is not None and status is not None:
            rows = self._read(q.LIST_RUNS_OF_FLOW_BY_STATUS, (flow, status, limit))
        elif status is not None and newest_first:
            rows = self._read(q.LIST_RUNS_BY_STATUS_NEWEST, (status, limit))
        elif flow is not None:
            rows = self._read(q.LIST_RUNS_OF_FLOW, (flow, limit))
        elif status is not None:
            rows = self._read(q.LIST_RUNS_BY_STATUS, (status, limit))
        else:
            rows = self._read(q.LIST_RUNS, (limit,))
        found = [_row(r) for r in rows]
        return [r for r in found if status is None or r.status == status]

    def latest(self, *, origin: str | None = None, flow: str | None = None) -> RunRow | None:
        if origin is not None:
            rows = self._read(q.LATEST_OF_ORIGIN, (origin,))
        else:
            rows = self._read(q.LATEST_OF_FLOW, (flow,))
        return _row(rows[0]) if rows else None

    def count_of_origin(self, origin: str) -> int:
        return int(self._read(q.COUNT_OF_ORIGIN, (origin,))[0][0])

    def records(self, key: str) -> list[LogRecord]:
        """The events with this ordering key, in log order (a run's records)."""
        return [LogRecord(r[0], r[1], r[2], r[3]) for r in self._read(q.RUN_RECORDS, (key,))]
