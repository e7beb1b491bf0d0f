"""The job runner: every hosted-action invocation is a job; long ones run here, in the background.

``run_now`` runs a short action in the calling thread (the tracker waits for the answer);
``submit`` queues a long one (``@action(..., background=True)``) and returns at once. Worker threads
claim queued jobs from the :class:`~trackwire.ports.JobStore` (so a job queued by another process
on the same store is run too), call the handler with ``inv.progress(fraction, message)`` writing to
the job's row, and record the end.

A supervisor thread beats for this runner's running jobs, fails those past their timeout (the
handler's next ``progress`` raises :class:`~trackwire.actions.hosted.JobCancelled`, and a fresh
worker takes the stuck one's place), and settles the running jobs of runners that stopped beating
(:func:`trackwire.core.jobs.settle_stale`: interrupted, or queued again for ``rerun_interrupted``
actions). On a graceful stop, jobs still running after the grace period are settled the same way.

Every end is recorded once, as a ``trackwire.action.invoked`` event whose ``source_id`` is the job id.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from trackwire.actions.hosted import Action, ActionError, Invocation, JobCancelled
from trackwire.core.event import Event, Ref
from trackwire.core.jobs import Job, JobState, clamp, overdue, settle_stale
from trackwire.ports import JobStore

__all__ = ["INVOKED_TYPE", "JobQueue", "JobRunner", "invocation_event", "job_url", "new_job"]

log = logging.getLogger("trackwire.actions.jobs")

INVOKED_TYPE = "trackwire.action.invoked"
REPORT_EVERY = 0.2  # s between progress writes (a new message, or 1.0, is always written at once)
IDLE_POLL = 0.5  # s a worker waits for a wake-up before looking at the store again
PRUNE_EVERY = 3600.0  # s between deletions of jobs past their retention


def job_url(job: Job, suffix: str = "") -> str:
    """The path of the job's page (or of its ``/progress``, ``/status``), with its key."""
    return f"/actions/jobs/{job.id}{suffix}?key={quote(job.key)}"


def new_job(act: Action, invocation: Invocation, now: float, default_timeout: float, **fields: Any) -> Job:
    """A job for ``invocation`` (already prepared), not yet stored; queued unless ``fields`` say otherwise."""
    return Job(
        id=uuid.uuid4().hex,
        key=secrets.token_urlsafe(18),
        action=act.identifier,
        tracker=invocation.tracker,
        invocation=invocation.summary(),
        background=act.background,
        rerun=act.rerun_interrupted,
        timeout=act.timeout or default_timeout,
        created=now,
        **fields,
    )


class JobQueue:
    """Queue background actions from another process (an ftrack plugin's worker) for the daemon's runner.

    ``JobQueue("sqlite:///trackwire.db", "https://trackwire.example.com")`` is a ``submit`` for
    :func:`~trackwire.actions.hosted.ftrack_subscribe`: it stores the job as queued and returns the URL of
    its page; the runner of the daemon serving the web app on that store claims and runs it.
    """

    def __init__(self, store_url: str, web_url: str = "", timeout: float = 3600.0) -> None:
        self.store_url = store_url
        self.web_url = web_url.rstrip("/")
        self.timeout = timeout
        self._jobs: JobStore | None = None
        self._lock = threading.Lock()

    def __call__(self, act: Action, invocation: Invocation) -> str:
        with self._lock:
            if self._jobs is None:
                from trackwire.store.sqlite.jobs import SqliteJobs

                if not self.store_url.startswith("sqlite:///"):
                    raise ValueError(f"JobQueue needs a sqlite:/// store URL, got {self.store_url!r}")
                self._jobs = SqliteJobs(self.store_url.removeprefix("sqlite:///"))
            job = self._jobs.insert(new_job(act, invocation, time.time(), self.timeout))
        log.info("job %s queued: %s for %s", job.id, act.identifier, job.user or "unknown user")
        return self.web_url + job_url(job)

    def close(self) -> None:
        with self._lock:
            if self._jobs is not None:
                self._jobs.close()
                self._jobs = None


def invocation_event(job: Job) -> Event:
    """The log's record of a finished job: who, what, selection, values, result, and the job."""
    inv = job.invocation
    user = inv.get("user") or {}
    who = user.get("id") if user.get("id") is not None else user.get("login")
    selected = list(inv.get("selected") or ())
    result = None if job.result is None else {"success": job.result["success"], "message": job.result["message"]}
    data = {
        **inv,
        "result": result,
        "error": job.error,
        "job": {
            "id": job.id,
            "state": job.state,
            "background": job.background,
            "attempts": job.attempts,
            "duration": job.duration,
        },
    }
    return Event(
        source=f"actions:{job.tracker}",
        source_id=job.id,
        type=INVOKED_TYPE,
        entity=Ref(str(inv.get("entity_type") or ""), selected[0]) if selected else None,
        project=Ref("Project", inv["project_id"]) if inv.get("project_id") is not None else None,
        user=Ref("User", who, user.get("login")) if who is not None else None,
        attribute=job.action,
        data=data,
        key=f"action:{job.action}",
    )


class JobRunner:
    def __init__(
        self,
        jobs: JobStore,
        registry: Callable[[], Mapping[str, Action]],
        append: Callable[[Event], Any],
        *,
        workers: int = 4,
        timeout: float = 3600.0,
        heartbeat: float = 5.0,
        retention: float = 30 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jobs = jobs
        self.registry = registry
        self.append = append
        self.workers = workers
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.retention = retention
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._cancelled: dict[str, threading.Event] = {}
        self._abandoned: set[str] = set()
        self._started = False

    # -- life ------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        self._settle_stale()  # what a crashed predecessor left, before anything new runs
        self._thread(self._supervise, "action-jobs-supervisor")
        for _ in range(self.workers):
            self._thread(self._work, "action-jobs-worker")

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def stop(self, grace: float = 5.0) -> None:
        """Stop taking jobs; give running ones ``grace`` s, then settle what still runs (interrupted)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + grace
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        for job in self.jobs.running():
            if job.owner == self.owner:
                self._cancel(job.id)
                settlement = settle_stale(job, math.inf, self.heartbeat)
                if settlement is not None and self.jobs.settle(job, settlement, self.clock()):
                    log.warning("job %s (%s) stopped with the runner: %s", job.id, job.action, settlement.state)
                    self._record(job.id)

    # -- invocations -----------------------------------------------------------------------------

    def _new(self, act: Action, invocation: Invocation, **fields: Any) -> Job:
        return new_job(act, invocation, self.clock(), self.timeout, **fields)

    def submit(self, act: Action, invocation: Invocation) -> Job:
        """Queue ``invocation`` (already prepared) as a background job; a worker takes it."""
        self.start()
        job = self.jobs.insert(self._new(act, invocation))
        log.info("job %s queued: %s for %s", job.id, act.identifier, job.user or "unknown user")
        self._wake.set()
        return job

    def run_now(self, act: Action, invocation: Invocation) -> Job:
        """Run ``invocation`` in this thread as a job of this runner; returns the finished job."""
        self.start()
        now = self.clock()
        job = self.jobs.insert(self._new(act, invocation, state="running", owner=self.owner, started=now, beat=now))
        job = replace(job, attempts=1)
        self._execute(act, job)
        final = self.jobs.get(job.id)
        assert final is not None
        return final

    # -- running -----------------------------------------------------------------------------------

    def _work(self) -> None:
        me = threading.current_thread()
        while not self._stop.is_set():
            try:
                job = self.jobs.claim(self.owner, self.clock())
            except Exception:  # the store is busy or gone for a moment: the job stays queued
                log.exception("could not claim a job; trying again")
                self._stop.wait(1.0)
                continue
            if job is None:
                self._wake.wait(IDLE_POLL)
                self._wake.clear()
                continue
            try:
                act = self.registry().get(job.action)
                if act is None:
                    self._end(job, "failed", "", None, f"no action {job.action!r} is loaded in this process")
                else:
                    self._execute(act, job)
            except Exception:  # its end could not be written: the supervisor's timeout ends it later
                log.exception("job %s (%s) could not be ended in the store", job.id, job.action)
            with self._lock:
                if job.id in self._abandoned:  # it ran past its timeout; a fresh worker took this one's place
                    self._abandoned.discard(job.id)
                    if me in self._threads:
                        self._threads.remove(me)
                    return

    def _reporter(self, job: Job) -> Callable[[float, str], None]:
        cancelled = self._cancelled.setdefault(job.id, threading.Event())
        written_at, written = -math.inf, ""

        def report(fraction: float, message: str = "") -> None:
            nonlocal written_at, written
            if cancelled.is_set() or self._stop.is_set():
                raise JobCancelled(f"job {job.id} is no longer running (timed out or stopping)")
            now, value, message = self.clock(), clamp(fraction), str(message)
            if now - written_at < REPORT_EVERY and message == written and value < 1.0:
                return  # a tight loop of reports costs one write per REPORT_EVERY
            written_at, written = now, message
            if not self.jobs.report(job.id, self.owner, value, message, now):
                cancelled.set()
                raise JobCancelled(f"job {job.id} is no longer running (timed out or settled elsewhere)")

        return report

    def _execute(self, act: Action, job: Job) -> None:
        invocation = replace(Invocation.from_summary(job.invocation), reporter=self._reporter(job))
        try:
            outcome = act.run(invocation)
        except JobCancelled:
            log.info("job %s (%s) stopped after it was cancelled", job.id, job.action)
            return
        except ActionError as exc:
            self._end(job, "failed", str(exc), {"success": False, "message": str(exc), "data": {}}, None)
            return
        except Exception as exc:
            log.exception("action %s failed (job %s)", job.action, job.id)
            self._end(job, "failed", "", None, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._cancelled.pop(job.id, None)
        state: JobState = "succeeded" if outcome.success else "failed"
        result = {"success": outcome.success, "message": outcome.message, "data": dict(outcome.data)}
        self._end(job, state, outcome.message, result, None)

    def _end(self, job: Job, state: JobState, message: str, result: dict[str, Any] | None, error: str | None) -> None:
        if self.jobs.finish(job.id, self.owner, state, message, result, error, self.clock()):
            self._record(job.id)
        else:
            log.info("job %s (%s) ended after it was settled elsewhere; its result is dropped", job.id, job.action)

    def _record(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return
        try:
            self.append(invocation_event(job))
        except Exception:
            log.exception("could not record job %s (%s) in the log; the job's row keeps its result", job.id, job.action)

    def _cancel(self, job_id: str) -> None:
        self._cancelled.setdefault(job_id, threading.Event()).set()

    # -- supervision -----------------------------------------------------------------------------

    def _supervise(self) -> None:
        tick = min(1.0, self.heartbeat)
        last_beat = last_prune = -math.inf
        while not self._stop.wait(tick):
            try:
                now = self.clock()
                if now - last_beat >= self.heartbeat:
                    self.jobs.heartbeat(self.owner, now)
                    last_beat = now
                if now - last_prune >= PRUNE_EVERY:
                    pruned = self.jobs.prune(now - self.retention)
                    if pruned:
                        log.info("deleted %d jobs that ended more than %.0f days ago", pruned, self.retention / 86400)
                    last_prune = now
                self._time_out(now)
                self._settle_stale()
            except Exception:
                log.exception("job supervision failed; trying again")

    def _time_out(self, now: float) -> None:
        for job in self.jobs.running():
            if job.owner != self.owner or not overdue(job, now):
                continue
            message = f"timed out after {job.timeout:g} s"
            if self.jobs.finish(job.id, self.owner, "failed", message, None, message, now):
                log.warning("job %s (%s) %s", job.id, job.action, message)
                self._cancel(job.id)
                self._record(job.id)
                if job.background:
                    with self._lock:
                        self._abandoned.add(job.id)
                    self._thread(self._work, "action-jobs-worker")

    def _settle_stale(self) -> None:
        now = self.clock()
        for job in self.jobs.running():
            if job.owner == self.owner:
                continue
            settlement = settle_stale(job, now, self.heartbeat)
            if settlement is None or not self.jobs.settle(job, settlement, now):
                continue
            log.warning("job %s (%s) of a stopped process: %s", job.id, job.action, settlement.message)
            if settlement.state == "interrupted":
                self._record(job.id)
            else:
                self._wake.set()
