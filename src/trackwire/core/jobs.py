"""Action jobs as facts and decisions: the record of one invocation and what happens to it.

Every hosted-action invocation is a job. A short action's job is run at once, while the tracker
waits; a long one (``@action(..., background=True)``) is queued and a job runner takes it. States::

    queued ──claim──▶ running ──▶ succeeded | failed
                        │
                        └─ its process died (3 missed heartbeats) ──▶ interrupted
                                       or, for an action marked rerun_interrupted, queued again

A job is never lost silently: a queued job waits for any runner, a running job whose heartbeats stop
is settled by the next runner that looks (:func:`settle_stale`), and a job past its deadline fails
(:func:`overdue`). Nothing here reads a clock or a database: times are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FINISHED",
    "MAX_RERUNS",
    "STALE_BEATS",
    "Job",
    "JobState",
    "Settlement",
    "clamp",
    "overdue",
    "settle_stale",
]

JobState = Literal["queued", "running", "succeeded", "failed", "interrupted"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "interrupted"})
STALE_BEATS = 3  # a running job whose owner missed this many heartbeats belongs to a dead process
MAX_RERUNS = 3  # an action marked rerun_interrupted is started at most this many times in all


@dataclass(frozen=True, slots=True)
class Job:
    """One invocation of a hosted action, as stored."""

    id: str
    key: str  # the secret of the job's page (its URL carries it); never shown in lists
    action: str
    tracker: str
    invocation: Mapping[str, Any]  # Invocation.summary(): who, what, selection, values, payload
    background: bool
    state: JobState = "queued"
    progress: float = 0.0
    message: str = ""
    result: Mapping[str, Any] | None = None
    error: str | None = None
    attempts: int = 0
    rerun: bool = False
    timeout: float = 3600.0
    owner: str | None = None
    beat: float | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    seq: int = 0  # the store's order of creation, for paging

    @property
    def done(self) -> bool:
        return self.state in FINISHED

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return None if self.finished is None else max(0.0, self.finished - self.started)

    @property
    def user(self) -> str:
        who = self.invocation.get("user") or {}
        login, ident = who.get("login"), who.get("id")
        return str(login if login else ident if ident is not None else "")


def clamp(fraction: float) -> float:
    """A progress fraction within 0..1 (a handler may count past the end, or pass NaN)."""
    if fraction != fraction:  # NaN
        return 0.0
    return min(1.0, max(0.0, float(fraction)))


def overdue(job: Job, now: float) -> bool:
    """Whether a running job has used up its time."""
    return job.state == "running" and job.started is not None and now - job.started > job.timeout


@dataclass(frozen=True, slots=True)
class Settlement:
    """What to do with a running job whose process stopped beating: run it again, or mark it interrupted."""

    state: Literal["queued", "interrupted"]
    message: str


def settle_stale(job: Job, now: float, heartbeat: float) -> Settlement | None:
    """``None`` while the job's owner is alive; otherwise the documented rule.

    A job runs at most once unless its action says it may run again (``rerun_interrupted=True``, for
    handlers that are safe to repeat), and then at most :data:`MAX_RERUNS` times in all.
    """
    if job.state != "running":
        return None
    last = job.beat if job.beat is not None else job.started
    if last is not None and now - last <= STALE_BEATS * heartbeat:
        return None
    if job.rerun and job.attempts < MAX_RERUNS:
        return Settlement("queued", f"its process stopped during attempt {job.attempts}; running it again")
    why = "its process stopped while it ran (crash, kill or restart)"
    if job.rerun:
        why += f", {job.attempts} times"
    return Settlement("interrupted", why + "; not run again: start the action again if it should be")
