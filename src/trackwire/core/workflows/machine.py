"""The workflow state machine: facts in, records out, the clock passed in.

:class:`Machine` holds every live run plus what runs share (resource pools, the global and per-flow
``max_concurrent``). Each method takes one fact (a trigger, a step's result, a timer that matured)
and returns the records it wrote; the caller appends them to the log *before* acting on them (a
``step.active`` record is what makes a worker run the step, a ``timer.set`` record what arms a
timer). Nothing here touches I/O, sleeps or reads a clock.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trackwire.core.backoff import Backoff
from trackwire.core.workflows.spec import Assoc, Expr, FlowSpec, Replay, RunMode, StepStatus, evaluate, events_in
from trackwire.core.workflows.state import Record, Run, StepRun, apply

__all__ = ["Machine"]


@dataclass(frozen=True)
class _FlowIndex:
    flow: FlowSpec
    assocs: dict[str, list[Assoc]]
    dependents: dict[str, list[tuple[str, Expr]]]  # event -> the expression events that mention it

    @classmethod
    def of(cls, flow: FlowSpec) -> _FlowIndex:
        assocs: dict[str, list[Assoc]] = {}
        for assoc in flow.assocs:
            assocs.setdefault(assoc.source, []).append(assoc)
        dependents: dict[str, list[tuple[str, Expr]]] = {}
        for name, expr in flow.expression_events():
            for used in events_in(expr):
                dependents.setdefault(used, []).append((name, expr))
        return cls(flow, assocs, dependents)


@dataclass
class Machine:
    pools: Mapping[str, int] = field(default_factory=dict)
    max_concurrent: int = 0  # all runs together; <= 0: no limit
    rng: random.Random = field(default_factory=random.Random)

    runs: dict[str, Run] = field(default_factory=dict, init=False)
    _out: list[Record] = field(default_factory=list, init=False)
    _index: dict[int, _FlowIndex] = field(default_factory=dict, init=False)

    def _indexed(self, flow: FlowSpec) -> _FlowIndex:
        """Associations and expressions by the event they depend on, built once per flow."""
        found = self._index.get(id(flow))
        if found is None or found.flow is not flow:
            found = self._index[id(flow)] = _FlowIndex.of(flow)
        return found

    def _assocs_of(self, flow: FlowSpec, event: str) -> list[Assoc]:
        return self._indexed(flow).assocs.get(event, [])

    # -- bookkeeping -----------------------------------------------------------------------------

    def _emit(self, run: Run, kind: str, now: float, /, **data: Any) -> None:
        record = Record(run.run_id, kind, data, now)
        apply(run, record)
        self._out.append(record)

    def _take(self) -> list[Record]:
        out, self._out = self._out, []
        return out

    def used(self, pool: str) -> int:
        return sum(run.held.get(pool, 0) for run in self.runs.values())

    def active_count(self, flow: str | None = None) -> int:
        return sum(len(r.active) for r in self.runs.values() if flow is None or r.flow.name == flow)

    def replay(self, run_id: str, flow: FlowSpec, records: Iterable[Record]) -> Run:
        """Rebuild a run from its stored records (after a restart, or to show it)."""
        run = Run(run_id, flow)
        for record in records:
            apply(run, record)
        self.runs[run_id] = run
        return run

    def forget(self, run_id: str) -> None:
        self.runs.pop(run_id, None)

    # -- facts -----------------------------------------------------------------------------------

    def start(
        self,
        run_id: str,
        flow: FlowSpec,
        now: float,
        triggers: Iterable[tuple[str, str]] = (),
        *,
        mode: RunMode = RunMode.RESTART,
        previous: Run | None = None,
    ) -> list[Record]:
        """A new run; ``triggers`` are (sequence, event) pairs; ``previous`` is the run a recovery recovers."""
        run = Run(run_id, flow)
        self.runs[run_id] = run
        self._emit(run, "run.started", now, flow=flow.name, mode=mode.value, recovers=previous and previous.run_id)
        if previous is not None:
            self._restore(run, previous, now)
        for seq, event in triggers:
            self._raise(run, seq, event, now)
        self._schedule(now)
        self._finish_if_done(run, now)
        return self._take()

    def _restore(self, run: Run, previous: Run, now: float) -> None:
        """Recovery: keep what the earlier run raised, skip or rerun each step by its last status."""
        for seq, state in previous.seqs.items():
            if state.triggered:
                self._emit(run, "events.restored", now, seq=seq, events=dict(state.triggered))
            for name, step_run in state.steps.items():
                spec = run.flow.steps.get(name)
                if spec is None:
                    continue
                if spec.directive(step_run.status) is Replay.SKIP:
                    self._emit(
                        run,
                        "step.skipped",
                        now,
                        seq=seq,
                        step=name,
                        status=step_run.status.value,
                        attempt=step_run.attempt,
                        result=step_run.result,
                        error=step_run.error,
                    )
                else:
                    self._emit(run, "step.ready", now, seq=seq, step=name, reset=True)
        for timer in previous.timers.values():
            self._emit(run, "timer.set", now, seq=timer.seq, timer=timer.id, due=timer.due, target=timer.target,
                       kind=timer.kind)  # fmt: skip

    def trigger(self, run_id: str, seq: str, event: str, now: float) -> list[Record]:
        run = self.runs[run_id]
        if not run.done and run.stopping is None:
            self._raise(run, seq, event, now)
            self._schedule(now)
            self._finish_if_done(run, now)
        return self._take()

    def timer_due(self, run_id: str, timer_id: str, now: float) -> list[Record]:
        run = self.runs.get(run_id)
        if run is None or run.done or run.stopping is not None:
            return self._take()
        timer = run.timers.get(timer_id)
        if timer is None:
            return self._take()
        self._emit(run, "timer.fired", now, seq=timer.seq, timer=timer.id, late=max(0.0, now - timer.due))
        if timer.kind == "event":
            self._raise(run, timer.seq, timer.target, now)
        elif timer.kind == "step":
            self._engage(run, timer.seq, timer.target, now)
        else:
            self._emit(run, "step.ready", now, seq=timer.seq, step=timer.target)
        self._schedule(now)
        self._finish_if_done(run, now)
        return self._take()

    def step_result(
        self,
        run_id: str,
        seq: str,
        step: str,
        attempt: int,
        now: float,
        *,
        ok: bool,
        result: Any = None,
        error: str | None = None,
        retry: bool = True,
        retry_after: float | None = None,
        traceback: str | None = None,
    ) -> list[Record]:
        """A step attempt ended. Results of attempts that are no longer running are ignored."""
        run = self.runs.get(run_id)
        if run is None or (seq, step) not in run.active:
            return self._take()
        state = run.seqs[seq].steps[step]
        if state.attempt != attempt:
            return self._take()
        spec = run.flow.steps[step]
        if ok:
            self._emit(run, "step.succeeded", now, seq=seq, step=step, attempt=attempt, result=result)
            self._raise_status(run, seq, spec.triggers, (StepStatus.SUCCESS, StepStatus.COMPLETE), now)
        elif retry and state.failures + 1 < spec.max_attempts and run.stopping is None:
            wait = (
                retry_after if retry_after is not None else Backoff(*spec.backoff).delay(state.failures + 1, self.rng)
            )
            self._emit(run, "step.failed", now, seq=seq, step=step, attempt=attempt, error=error, final=False,
                       retry_in=wait)  # fmt: skip
            timer = f"{seq}|retry|{step}|{attempt}"
            self._emit(run, "timer.set", now, seq=seq, timer=timer, due=now + wait, target=step, kind="retry")
        else:
            handled = bool(spec.triggers.get(StepStatus.FAILURE) or spec.triggers.get(StepStatus.COMPLETE))
            self._emit(run, "step.failed", now, seq=seq, step=step, attempt=attempt, error=error, final=True,
                       unhandled=not handled, traceback=traceback)  # fmt: skip
            self._raise_status(run, seq, spec.triggers, (StepStatus.FAILURE, StepStatus.COMPLETE), now)
            if run.flow.stops_on_exception(spec) and run.stopping is None:
                self._emit(run, "run.stopping", now, reason=f"step {step}[{seq}] failed: {error}")
        self._schedule(now)
        for other in list(self.runs.values()):
            self._finish_if_done(other, now)
        return self._take()

    def interrupted(self, run_id: str, seq: str, step: str, attempt: int, now: float) -> list[Record]:
        """The worker died under a step for a reason that is not the step's: run it again."""
        run = self.runs.get(run_id)
        if run is None or (seq, step) not in run.active or run.seqs[seq].steps[step].attempt != attempt:
            return self._take()
        self._emit(run, "step.interrupted", now, seq=seq, step=step, attempt=attempt)
        self._schedule(now)
        return self._take()

    def resume(
        self,
        run_id: str,
        now: float,
        *,
        retry_failed: bool = False,
        mode: str = "resume",
        stale: Collection[tuple[str, str, int]] | None = None,
    ) -> list[Record]:
        """Carry on a run rebuilt from the log: steps that were running when it stopped run again.

        ``stale`` are the (sequence, step, attempt) that were running when the run was read back from
        the log (nothing runs them any more); ``None`` means every active step is stale.
        """
        run = self.runs[run_id]
        if run.done or run.stopping is not None or retry_failed or mode == RunMode.CONTINUE.value:
            self._emit(run, "run.resumed", now, mode=mode)
        for seq, step in sorted(run.active):
            attempt = run.seqs[seq].steps[step].attempt
            if stale is None or (seq, step, attempt) in stale:
                self._emit(run, "step.interrupted", now, seq=seq, step=step, attempt=attempt)
        if retry_failed:
            for seq, state in run.seqs.items():
                for name, step_run in state.steps.items():
                    if step_run.status is StepStatus.FAILURE and not step_run.skipped:
                        self._emit(run, "step.ready", now, seq=seq, step=name, reset=True)
        self._schedule(now)
        self._finish_if_done(run, now)
        return self._take()

    def cancel(self, run_id: str, now: float, reason: str = "cancelled") -> list[Record]:
        run = self.runs.get(run_id)
        if run is None or run.done:
            return self._take()
        self._emit(run, "run.stopping", now, reason=reason, cancel=True)
        self._finish_if_done(run, now)
        return self._take()

    # -- decisions -------------------------------------------------------------------------------

    def _raise(self, run: Run, seq: str, event: str, now: float) -> None:
        """Raise ``event`` once per sequence, engage its associations, then any expression it completes."""
        pending = [event]
        while pending:
            name = pending.pop(0)
            state = run.seq(seq)
            if name in state.triggered or name not in run.flow.events:
                continue
            self._emit(run, "event.raised", now, seq=seq, event=name)
            for assoc in self._assocs_of(run.flow, name):
                if assoc.delay > 0:
                    timer = f"{seq}|{name}>{assoc.kind}:{assoc.target}"
                    self._emit(run, "timer.set", now, seq=seq, timer=timer, due=now + assoc.delay,
                               target=assoc.target, kind=assoc.kind)  # fmt: skip
                elif assoc.kind == "event":
                    pending.append(assoc.target)
                else:
                    self._engage(run, seq, assoc.target, now)
            dependents = self._indexed(run.flow).dependents.get(name, ())
            if dependents:
                triggered = set(state.triggered)
                for other, expr in dependents:
                    if other not in triggered and other not in pending and evaluate(expr, triggered):
                        pending.append(other)

    def _raise_status(
        self, run: Run, seq: str, triggers: Mapping[StepStatus, tuple[str, ...]], statuses: Iterable[StepStatus],
        now: float,
    ) -> None:  # fmt: skip
        for status in statuses:
            for event in triggers.get(status, ()):
                self._raise(run, seq, event, now)

    def _engage(self, run: Run, seq: str, step: str, now: float) -> None:
        """A step runs once per sequence: engaging it again does nothing."""
        if step in run.seq(seq).steps:
            return
        self._emit(run, "step.ready", now, seq=seq, step=step)
        self._raise_status(run, seq, run.flow.steps[step].triggers, (StepStatus.READY,), now)

    def _schedule(self, now: float) -> None:
        """Start queued steps while the global and per-flow limits and the pools allow."""
        used = {pool: self.used(pool) for pool in self.pools}
        total = self.active_count()
        per_flow: dict[str, int] = {}
        for run in self.runs.values():
            per_flow[run.flow.name] = per_flow.get(run.flow.name, 0) + len(run.active)
        for run in list(self.runs.values()):
            if not run.queue or run.done or run.stopping is not None:
                continue
            limit = run.flow.max_concurrent
            blocked: list[tuple[str, str]] = []
            while run.queue:
                if 0 < self.max_concurrent <= total:
                    break
                if 0 < limit <= per_flow.get(run.flow.name, 0):
                    break
                seq, step = run.queue.popleft()
                spec = run.flow.steps[step]
                if any(used.get(pool, 0) + amount > self.pools.get(pool, 0) for pool, amount in spec.acquires):
                    blocked.append((seq, step))
                    continue
                run.queue.appendleft((seq, step))
                state: StepRun = run.seqs[seq].steps[step]
                first = state.attempt == 0
                self._emit(run, "step.active", now, seq=seq, step=step, attempt=state.attempt + 1)
                for pool, amount in spec.acquires:
                    used[pool] = used.get(pool, 0) + amount
                total += 1
                per_flow[run.flow.name] = per_flow.get(run.flow.name, 0) + 1
                if first:
                    self._raise_status(run, seq, spec.triggers, (StepStatus.ACTIVE,), now)
            run.queue.extendleft(reversed(blocked))

    def _finish_if_done(self, run: Run, now: float) -> None:
        if run.done or run.active:
            return
        if run.stopping is None and (run.queue or run.timers):
            return
        if run.stopping is not None and run.stopping.startswith("cancel"):
            status = "cancelled"
        elif run.stopping is not None or run.unhandled:
            status = "failure"
        else:
            status = "success"
        self._emit(run, "run.finished", now, status=status, reason=run.stopping)
