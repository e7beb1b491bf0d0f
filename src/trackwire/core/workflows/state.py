"""The state of workflow runs, rebuilt from their records alone.

Every change of a run is a :class:`Record` (``step.active``, ``event.raised``, ``timer.set``...).
:func:`apply` is the only function that changes a :class:`Run`; the machine decides which records
to write and applies them, and recovery after a crash applies the same records read back from the
log, so both arrive at the same state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from trackwire.core.workflows.spec import FlowSpec, StepStatus

__all__ = ["Record", "Run", "SeqState", "StepRun", "Timer", "apply"]

FINISHED = ("success", "failure", "cancelled")


@dataclass(frozen=True, slots=True)
class Record:
    """One transition of one run; stored in the log as ``trackwire.workflow.<kind>``."""

    run_id: str
    kind: str
    data: dict[str, Any]
    at: float


@dataclass(slots=True)
class StepRun:
    status: StepStatus
    attempt: int = 0  # attempts started (an attempt's id)
    failures: int = 0
    result: Any = None
    error: str | None = None
    ready_at: float | None = None
    started: float | None = None
    finished: float | None = None
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "attempt": self.attempt,
            "failures": self.failures,
            "result": self.result,
            "error": self.error,
            "ready_at": self.ready_at,
            "started": self.started,
            "finished": self.finished,
            "skipped": self.skipped,
        }


@dataclass(slots=True)
class SeqState:
    triggered: dict[str, float] = field(default_factory=dict)  # event -> when
    steps: dict[str, StepRun] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Timer:
    id: str
    due: float
    seq: str
    target: str
    kind: str  # "event" | "step" | "retry"


@dataclass
class Run:
    run_id: str
    flow: FlowSpec
    mode: str = "restart"
    status: str = "running"
    stopping: str | None = None
    recovers: str | None = None
    created: float = 0.0
    finished: float | None = None
    seqs: dict[str, SeqState] = field(default_factory=dict)
    timers: dict[str, Timer] = field(default_factory=dict)
    queue: deque[tuple[str, str]] = field(default_factory=deque)
    active: set[tuple[str, str]] = field(default_factory=set)
    held: dict[str, int] = field(default_factory=dict)  # pool -> amount this run holds
    unhandled: list[str] = field(default_factory=list)  # failures no trigger handled
    counter: int = 0

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    def seq(self, name: str) -> SeqState:
        state = self.seqs.get(name)
        if state is None:
            state = self.seqs[name] = SeqState()
        return state

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "flow": self.flow.name,
            "mode": self.mode,
            "status": self.status,
            "stopping": self.stopping,
            "recovers": self.recovers,
            "created": self.created,
            "finished": self.finished,
            "sequences": {
                name: {
                    "events": dict(state.triggered),
                    "steps": {step: run.to_json() for step, run in state.steps.items()},
                }
                for name, state in self.seqs.items()
            },
            "timers": [
                {"id": t.id, "due": t.due, "seq": t.seq, "target": t.target, "kind": t.kind}
                for t in sorted(self.timers.values(), key=lambda t: t.due)
            ],
            "unhandled": list(self.unhandled),
        }


def _hold(run: Run, amounts: tuple[tuple[str, int], ...], sign: int) -> None:
    for pool, amount in amounts:
        run.held[pool] = run.held.get(pool, 0) + sign * amount


def apply(run: Run, record: Record) -> None:
    """Change ``run`` by one record. Pure bookkeeping: no decision is taken here."""
    data = record.data
    kind = record.kind
    at = record.at
    run.counter += 1
    seq_name = str(data.get("seq", ""))
    if kind == "run.started":
        run.mode = str(data.get("mode", "restart"))
        run.recovers = data.get("recovers")
        run.created = at
    elif kind == "event.raised":
        run.seq(seq_name).triggered[str(data["event"])] = at
    elif kind == "events.restored":
        run.seq(seq_name).triggered.update({str(k): float(v) for k, v in dict(data["events"]).items()})
    elif kind == "timer.set":
        timer = Timer(str(data["timer"]), float(data["due"]), seq_name, str(data["target"]), str(data["kind"]))
        run.timers[timer.id] = timer
    elif kind == "timer.fired":
        run.timers.pop(str(data["timer"]), None)
    elif kind == "step.ready":
        step = str(data["step"])
        state = run.seq(seq_name).steps.get(step)
        if state is None:
            state = run.seq(seq_name).steps[step] = StepRun(StepStatus.READY)
        state.status = StepStatus.READY
        state.ready_at = at
        if data.get("reset"):
            state.failures = 0
            state.error = None
        if (seq_name, step) not in run.queue:
            run.queue.append((seq_name, step))
    elif kind == "step.active":
        step = str(data["step"])
        state = run.seq(seq_name).steps[step]
        state.status = StepStatus.ACTIVE
        state.attempt = int(data["attempt"])
        state.started = at
        state.finished = None
        run.active.add((seq_name, step))
        _remove(run.queue, (seq_name, step))
        _hold(run, run.flow.steps[step].acquires if step in run.flow.steps else (), 1)
    elif kind in ("step.succeeded", "step.failed", "step.interrupted"):
        step = str(data["step"])
        state = run.seq(seq_name).steps[step]
        if (seq_name, step) in run.active:
            run.active.discard((seq_name, step))
            spec = run.flow.steps.get(step)
            if kind == "step.interrupted":
                _hold(run, spec.acquires if spec else (), -1)
            else:
                _hold(run, spec.released if spec else (), -1)
        if kind == "step.succeeded":
            state.status = StepStatus.SUCCESS
            state.result = data.get("result")
            state.error = None
            state.finished = at
        elif kind == "step.failed":
            state.failures += 1
            state.error = data.get("error")
            state.finished = at
            state.status = StepStatus.FAILURE if data.get("final") else StepStatus.READY
            if data.get("final") and data.get("unhandled"):
                run.unhandled.append(f"{step}[{seq_name}]")
        else:  # interrupted: not the step's fault; it runs again first
            state.status = StepStatus.READY
            run.queue.appendleft((seq_name, step))
    elif kind == "step.skipped":
        step = str(data["step"])
        run.seq(seq_name).steps[step] = StepRun(
            StepStatus(str(data["status"])),
            attempt=int(data.get("attempt", 0)),
            result=data.get("result"),
            error=data.get("error"),
            finished=at,
            skipped=True,
        )
    elif kind == "run.stopping":
        run.stopping = str(data.get("reason") or "stopping")
        run.queue.clear()
    elif kind == "run.resumed":
        run.status = "running"
        run.stopping = None
        run.finished = None
        run.unhandled.clear()
        waiting = {(t.seq, t.target) for t in run.timers.values() if t.kind == "retry"}
        for name, seq_state in run.seqs.items():
            for step, step_run in seq_state.steps.items():
                if (
                    step_run.status is StepStatus.READY
                    and (name, step) not in run.queue
                    and (name, step) not in waiting
                ):
                    run.queue.append((name, step))
    elif kind == "run.finished":
        run.status = str(data["status"])
        run.finished = at


def _remove(queue: deque[tuple[str, str]], item: tuple[str, str]) -> None:
    try:
        queue.remove(item)
    except ValueError:
        pass
