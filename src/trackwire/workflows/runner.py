"""The step runner: the engine's worker process, fed workflow steps.

Steps of every loaded flow run in one worker process (``plugins`` of kind ``workflow``), on a pool of
``workers`` threads. A step that runs past its timeout is killed with the process (the process's own
watchdog); steps that were running beside it, or in a process that died, are reported as
interrupted and run again; the process is started again at once.

Flows are keyed by definition (``name@version``): the process holds every definition a run still
uses, so a run keeps the definition it started with after its file changed. When the set changes
(:meth:`StepRunner.reload`), a new process takes the new steps at once while the old one finishes
what it runs and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackwire.core.event import Event, encode_event, loads
from trackwire.core.workflows.spec import FlowSpec
from trackwire.plugins.discovery import GroupSpec, PluginSpec
from trackwire.runtime.protocol import Result, RunItem
from trackwire.runtime.shielded import finish_despite_cancellation
from trackwire.runtime.worker import Death, WorkerProcess
from trackwire.workflows.definition import flow_to_json
from trackwire.workflows.steps import STEP_EVENT

__all__ = ["Attempt", "Outcome", "StepRunner"]

log = logging.getLogger("trackwire.workflows.runner")


@dataclass(frozen=True, slots=True)
class Attempt:
    run_id: str
    flow: str  # the definition's key, ``name@version``
    seq: str
    step: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended: ``ok``, ``error`` (may retry), ``fail`` (no retry), or ``interrupted``."""

    attempt: Attempt
    status: str
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    retry_after: float | None = None


class StepRunner:
    def __init__(
        self,
        flows: Mapping[str, FlowSpec],
        on_outcomes: Callable[[list[Outcome]], None],
        *,
        workers: int,
        timeout: float,
        log_level: str = "INFO",
    ) -> None:
        self.on_outcomes = on_outcomes
        self.log_level = log_level
        self.workers = max(1, workers)
        self.default_timeout = timeout
        self.flows: dict[str, FlowSpec] = dict(flows)
        self.spec = self._spec(self.flows)
        self.worker: WorkerProcess | None = None
        self._retiring: dict[int, WorkerProcess] = {}  # id -> a process finishing before it exits
        self._retirements: set[asyncio.Future[None]] = set()
        self._owner: dict[int, WorkerProcess] = {}
        self.positions: dict[str, int] = {}
        self.load_errors: dict[str, str] = {}
        self._running: dict[int, Attempt] = {}
        self._values: dict[int, str] = {}
        self._backlog: list[tuple[int, Attempt]] = []
        self._next = 0
        self._gone = asyncio.Event()
        self._gone.set()
        self._started = asyncio.Event()
        self._starting: WorkerProcess | None = None

    def _spec(self, flows: Mapping[str, FlowSpec]) -> GroupSpec:
        steps = [s for f in flows.values() for s in f.steps.values()]
        longest = max([self.default_timeout, *(s.timeout or 0.0 for s in steps)])
        return GroupSpec(
            name="workflow-steps",
            plugins=tuple(
                PluginSpec(f"flow:{key}", Path(f"<flow {key}>"), "workflow", {"flow": flow_to_json(flow), "key": key})
                for key, flow in flows.items()
            ),
            policy="retry",
            timeout=longest,
            max_attempts=1,
            concurrency=self.workers,
            start="now",
            max_memory_mb=None,
        )

    # -- life cycle ------------------------------------------------------------------------------

    async def supervise(self, stop: asyncio.Event) -> None:
        """Keep a worker process running; start a new one when it dies."""
        failures = 0
        while not stop.is_set():
            await self._gone.wait()
            box: list[WorkerProcess] = []
            worker = WorkerProcess(
                self.spec,
                None,
                self.log_level,
                self._on_results,
                lambda death, box=box: self._on_death(box[0], death),  # type: ignore[misc]
                slots=self.spec.concurrency,
                on_values=self._values.update,
            )
            box.append(worker)
            self._starting = worker
            try:
                await worker.start()
            except asyncio.CancelledError:
                await finish_despite_cancellation(worker.kill())  # stopping while it starts: it must not outlive us
                loaded = worker._loaded  # its "died while loading" error is expected here: mark it seen
                if loaded is not None and loaded.done() and not loaded.cancelled():
                    loaded.exception()
                raise
            except Exception as exc:
                failures += 1
                log.error("workflow step worker failed to start (%s); next try in %d s", exc, min(30, 2**failures))
                await asyncio.sleep(min(30, 2**failures))
                continue
            failures = 0
            self._starting = None
            if worker.group is not self.spec:  # the definitions changed while it started: start again
                self._retire(worker)
                continue
            self.worker = worker
            self.positions = {c.name: i for i, c in enumerate(worker.consumers)}
            self.load_errors = {f.plugin: str(f) for f in worker.failures}
            for failure in worker.failures:
                log.error("%s\n%s", failure, failure.traceback)
            self._gone.clear()
            self._started.set()
            backlog, self._backlog = self._backlog, []
            self._submit(backlog)

    async def wait_started(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.wait(), timeout)
        return self._started.is_set()

    async def stop(self, grace: float) -> None:
        if self._starting is not None and self._starting.proc is not None:
            await self._starting.kill()
        stopping = [w.stop(grace) for w in (self.worker, *self._retiring.values()) if w is not None]
        await asyncio.gather(*stopping, return_exceptions=True)
        if self._retirements:  # the retired processes are gone now: let their own stops finish too
            await asyncio.wait(self._retirements, timeout=10.0)

    def has(self, keys: set[str]) -> bool:
        """Whether the process (being) started holds all these definitions."""
        return keys <= set(self.flows)

    def reload(self, flows: Mapping[str, FlowSpec]) -> None:
        """Hold exactly these definitions from now on: a new process runs the steps sent from now on;
        the current one finishes what it runs (within the longest step timeout), then exits."""
        if set(flows) == set(self.flows):
            return
        self.flows = dict(flows)
        self.spec = self._spec(self.flows)
        old = self.worker
        if old is None:
            return  # none running: the supervisor starts the next one with the new definitions
        self.worker = None
        self._gone.set()
        self._retire(old)

    def _retire(self, worker: WorkerProcess) -> None:
        self._retiring[id(worker)] = worker
        retire = asyncio.ensure_future(worker.stop(self.spec.timeout))
        self._retirements.add(retire)

        def retired(done: asyncio.Future[None]) -> None:
            self._retiring.pop(id(worker), None)
            self._retirements.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.error("the retired workflow step worker did not stop cleanly: %s", done.exception())

        retire.add_done_callback(retired)

    # -- running steps ---------------------------------------------------------------------------

    def run(self, attempts: list[Attempt]) -> None:
        items = []
        for attempt in attempts:
            self._next += 1
            items.append((self._next, attempt))
        if self.worker is None or not self.worker.alive:
            self._backlog.extend(items)
            return
        self._submit(items)

    def _submit(self, items: list[tuple[int, Attempt]]) -> None:
        batch: list[RunItem] = []
        refused: list[Outcome] = []
        for token, attempt in items:
            position = self.positions.get(f"{attempt.flow}/{attempt.step}")
            if position is None:
                problem = self.load_errors.get(f"flow:{attempt.flow}", "the step is not loaded in the worker process")
                refused.append(Outcome(attempt, "fail", error=problem))
                continue
            body = encode_event(
                Event(
                    source="trackwire.workflow",
                    source_id=f"{attempt.run_id}/{attempt.seq}/{attempt.step}/{attempt.attempt}",
                    type=STEP_EVENT,
                    data={"run": attempt.run_id, "seq": attempt.seq, "step": attempt.step, "attempt": attempt.attempt},
                )
            )
            self._running[token] = attempt
            self._owner[token] = self.worker  # type: ignore[assignment]
            batch.append((token, body, (position,), attempt.attempt, f"{attempt.run_id}|{attempt.seq}|{attempt.step}"))
        if batch:
            assert self.worker is not None
            self.worker.submit(batch)
        if refused:
            self.on_outcomes(refused)

    def _on_results(self, results: list[Result]) -> None:
        outcomes: list[Outcome] = []
        for token, status, _position, error, tb, after, _seconds in results:
            attempt = self._running.pop(token, None)
            value = self._values.pop(token, None)
            self._owner.pop(token, None)
            if attempt is None:
                continue
            if status == "ok":
                outcomes.append(Outcome(attempt, "ok", result=None if value is None else loads(value)))
            elif status == "notrun":
                outcomes.append(Outcome(attempt, "interrupted"))
            elif status == "retry":
                outcomes.append(Outcome(attempt, "error", error=error, retry_after=after))
            else:
                outcomes.append(Outcome(attempt, status if status == "fail" else "error", error=error, traceback=tb))
        if outcomes:
            self.on_outcomes(outcomes)

    def _on_death(self, worker: WorkerProcess, death: Death) -> None:
        outcomes: list[Outcome] = []
        for token in sorted(t for t, w in self._owner.items() if w is worker):
            self._owner.pop(token, None)
            self._values.pop(token, None)
            attempt = self._running.pop(token, None)
            if attempt is None:
                continue
            if token in death.culprits and not death.expected:
                if death.reason.startswith("timed out"):
                    flow = self.flows.get(attempt.flow)
                    spec = flow.steps.get(attempt.step) if flow is not None else None
                    limit = (spec.timeout if spec is not None else None) or self.default_timeout
                    error = f"TimeoutError: step {attempt.step} ran longer than its {limit:g} s timeout"
                else:
                    error = f"the step's worker process died: {death.reason}"
                outcomes.append(Outcome(attempt, "error", error=error, traceback=death.traceback))
            else:
                outcomes.append(Outcome(attempt, "interrupted"))
        if worker is self.worker:
            self.worker = None
            self._gone.set()
            if death.expected:
                return  # stopped with the daemon: the next start runs these again
        else:
            # a process retired by a reload (or one that never finished starting): what it did not
            # finish runs again in the current one
            self._retiring.pop(id(worker), None)
        if outcomes:
            self.on_outcomes(outcomes)
