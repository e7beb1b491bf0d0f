"""An in-memory adapter of :class:`trackwire.ports.JobStore` (tests, and ``memory://`` stores)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from trackwire.core.jobs import Job, JobState, Settlement

__all__ = ["MemoryJobs"]


class MemoryJobs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._seq = 0

    def close(self) -> None:
        pass

    def insert(self, job: Job) -> Job:
        with self._lock:
            if job.id in self._jobs:
                raise ValueError(f"job {job.id} exists")
            self._seq += 1
            stored = replace(job, seq=self._seq)
            self._jobs[job.id] = stored
            return stored

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def claim(self, owner: str, now: float) -> Job | None:
        with self._lock:
            queued = [j for j in self._jobs.values() if j.state == "queued"]
            if not queued:
                return None
            first = min(queued, key=lambda j: j.seq)
            job = replace(first, state="running", owner=owner, started=now, beat=now, attempts=first.attempts + 1)
            self._jobs[job.id] = job
            return job

    def _mine(self, job_id: str, owner: str) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.state == "running" and job.owner == owner else None

    def report(self, job_id: str, owner: str, progress: float, message: str, now: float) -> bool:
        with self._lock:
            job = self._mine(job_id, owner)
            if job is None:
                return False
            self._jobs[job_id] = replace(job, progress=progress, message=message, beat=now)
            return True

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
        with self._lock:
            job = self._mine(job_id, owner)
            if job is None:
                return False
            progress = 1.0 if state == "succeeded" else job.progress
            self._jobs[job_id] = replace(
                job, state=state, message=message, result=result, error=error, finished=now, progress=progress
            )
            return True

    def heartbeat(self, owner: str, now: float) -> int:
        with self._lock:
            mine = [j for j in self._jobs.values() if j.state == "running" and j.owner == owner]
            for job in mine:
                self._jobs[job.id] = replace(job, beat=now)
            return len(mine)

    def running(self) -> list[Job]:
        with self._lock:
            return sorted((j for j in self._jobs.values() if j.state == "running"), key=lambda j: j.seq)

    def settle(self, job: Job, settlement: Settlement, now: float) -> bool:
        with self._lock:
            current = self._jobs.get(job.id)
            if current is None or current.state != "running" or (current.owner, current.beat) != (job.owner, job.beat):
                return False
            if settlement.state == "queued":
                self._jobs[job.id] = replace(current, state="queued", owner=None, beat=None, message=settlement.message)
            else:
                self._jobs[job.id] = replace(
                    current, state="interrupted", error=settlement.message, message=settlement.message, finished=now
                )
            return True

    def recent(self, limit: int = 50, before: int | None = None) -> list[Job]:
        with self._lock:
            found = [j for j in self._jobs.values() if before is None or j.seq < before]
        return sorted(found, key=lambda j: -j.seq)[:limit]

    def prune(self, finished_before: float) -> int:
        with self._lock:
            old = [
                j.id for j in self._jobs.values() if j.done and j.finished is not None and j.finished < finished_before
            ]
            for job_id in old:
                del self._jobs[job_id]
            return len(old)
