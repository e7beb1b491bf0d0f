"""Hosted-action jobs in the embedded store (the ``action_jobs`` table), on a connection of their own."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from trackwire.core.jobs import Job, JobState, Settlement
from trackwire.store.sqlite import job_queries as q
from trackwire.store.sqlite.migrations import open_migrated

__all__ = ["SqliteJobs"]


def _job(values: tuple[Any, ...]) -> Job:
    (seq, id_, key, action, tracker, invocation, background, state, progress, message, result, error, attempts,
     rerun, timeout, owner, beat, created, started, finished) = values  # fmt: skip
    return Job(
        id=id_,
        key=key,
        action=action,
        tracker=tracker,
        invocation=json.loads(invocation),
        background=bool(background),
        state=state,
        progress=progress,
        message=message,
        result=None if result is None else json.loads(result),
        error=error,
        attempts=attempts,
        rerun=bool(rerun),
        timeout=timeout,
        owner=owner,
        beat=beat,
        created=created,
        started=started,
        finished=finished,
        seq=seq,
    )


class SqliteJobs:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_migrated(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def _count(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._lock:
            return int(self._conn.execute(sql, params).rowcount)

    def insert(self, job: Job) -> Job:
        params = (
            job.id, job.key, job.action, job.tracker, json.dumps(job.invocation, default=str), int(job.background),
            job.state, job.progress, job.message, None if job.result is None else json.dumps(job.result, default=str),
            job.error, job.attempts, int(job.rerun), job.timeout, job.owner, job.beat, job.created, job.started,
            job.finished,
        )  # fmt: skip
        (row,) = self._rows(q.INSERT_JOB, params)
        found = self.get(job.id)
        assert found is not None and found.seq == row[0]
        return found

    def get(self, job_id: str) -> Job | None:
        rows = self._rows(q.GET_JOB, (job_id,))
        return _job(rows[0]) if rows else None

    def claim(self, owner: str, now: float) -> Job | None:
        rows = self._rows(q.CLAIM_OLDEST, (owner, now, now))
        return _job(rows[0]) if rows else None

    def report(self, job_id: str, owner: str, progress: float, message: str, now: float) -> bool:
        return self._count(q.REPORT, (progress, message, now, job_id, owner)) == 1

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
        saved = None if result is None else json.dumps(result, default=str)
        return self._count(q.FINISH, (state, message, saved, error, now, state, job_id, owner)) == 1

    def heartbeat(self, owner: str, now: float) -> int:
        return self._count(q.HEARTBEAT, (now, owner))

    def running(self) -> list[Job]:
        return [_job(r) for r in self._rows(q.RUNNING, ())]

    def settle(self, job: Job, settlement: Settlement, now: float) -> bool:
        if settlement.state == "queued":
            params: tuple[Any, ...] = (settlement.message, job.id, job.owner, job.beat)
            return self._count(q.REQUEUE_STALE, params) == 1
        params = (settlement.message, settlement.message, now, job.id, job.owner, job.beat)
        return self._count(q.INTERRUPT_STALE, params) == 1

    def recent(self, limit: int = 50, before: int | None = None) -> list[Job]:
        if before is None:
            return [_job(r) for r in self._rows(q.RECENT, (limit,))]
        return [_job(r) for r in self._rows(q.RECENT_BEFORE, (before, limit))]

    def prune(self, finished_before: float) -> int:
        return self._count(q.PRUNE, (finished_before,))
