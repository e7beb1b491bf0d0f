"""The workflow service inside the daemon: facts to the state machine, records to the log, steps to workers.

One loop takes every fact that arrived (a request, a step's outcome, a timer that matured), asks the
:class:`~trackwire.core.workflows.Machine` for the records, appends them to the log in one transaction
(one fsync for the whole batch) and only then acts on them: a ``step.active`` record sends the step to
the worker process, a ``timer.set`` record arms a timer. After a crash the unfinished runs are rebuilt
from their records and resumed: steps that were running run again, timers are armed again with their
stored due times.

Definitions are reloaded while the daemon runs (:meth:`WorkflowService.reload`, driven by the flow
files changing): a run keeps the definition it started with (stored with the run; its version is a
digest of it), new runs take the new one, and the step worker holds every definition still in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from trackwire.core.clock import SystemClock
from trackwire.core.workflows.machine import Machine
from trackwire.core.workflows.spec import FlowSpec, RunMode
from trackwire.core.workflows.state import Record
from trackwire.errors import TrackwireError
from trackwire.ports import Clock
from trackwire.runtime.shielded import finish_despite_cancellation
from trackwire.store.sqlite.workflow_runs import SqliteWorkflowRuns
from trackwire.workflows.definition import flow_from_json, flow_to_json
from trackwire.workflows.intake import StartRule, rules_of
from trackwire.workflows.runner import Attempt, Outcome, StepRunner
from trackwire.workflows.runs import definition_version, event_of, load_run, open_runs, records_of

if TYPE_CHECKING:
    from trackwire.runtime.daemon import Daemon

__all__ = ["WorkflowError", "WorkflowService"]

log = logging.getLogger("trackwire.workflows")

Fact = Callable[[], list[Record]]


class WorkflowError(TrackwireError):
    """A workflow request cannot be carried out."""


class WorkflowService:
    def __init__(
        self,
        flows: Mapping[str, FlowSpec],
        *,
        pools: Mapping[str, int] | None = None,
        max_concurrent: int = 0,
        workers: int = 8,
        timeout: float = 3600.0,
        clock: Clock | None = None,
    ) -> None:
        self.flows = dict(flows)
        self.rules: list[StartRule] = rules_of(self.flows)
        self.clock: Clock = clock or SystemClock()
        self.machine = Machine(pools=dict(pools or {}), max_concurrent=max_concurrent)
        self._keys: dict[int, tuple[FlowSpec, str]] = {}  # id(flow) -> (flow, "name@version")
        self._by_key: dict[str, FlowSpec] = {}
        self.runner = StepRunner(self._needed(), self._on_outcomes, workers=workers, timeout=timeout)
        self.ready = asyncio.Event()
        self.daemon: Daemon | None = None
        self.runs: SqliteWorkflowRuns | None = None
        self._facts: list[tuple[Fact, asyncio.Future[None] | None]] = []
        self._wake = asyncio.Event()
        self._timers: list[tuple[float, str, str]] = []
        self._timer_wake = asyncio.Event()
        self._numbers: dict[str, int] = {}
        self._stale: dict[str, set[tuple[str, str, int]]] = {}  # attempts found running in the log
        self._waiters: dict[str, list[asyncio.Future[str]]] = {}
        self.lateness: list[float] = []
        self._busy = False
        for flow in self.flows.values():
            problems = flow.problems(self.machine.pools)
            if problems:
                raise WorkflowError(f"flow {flow.name}: " + "; ".join(problems))

    # -- the daemon service ----------------------------------------------------------------------

    async def __call__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.runs = await asyncio.to_thread(open_runs, daemon.store_url)
        stop = daemon.stop_event
        tasks = [
            asyncio.create_task(self.runner.supervise(stop), name="workflows:worker"),
            asyncio.create_task(self._loop(), name="workflows:loop"),
            asyncio.create_task(self._timer_loop(), name="workflows:timers"),
        ]
        try:
            if not await self.runner.wait_started(120.0):
                raise WorkflowError("the workflow step worker did not start")
            await self._recover_unfinished()
            from trackwire.workflows.intake import add_intake

            await add_intake(daemon, self)
            self.ready.set()
            await stop.wait()
        finally:
            # The daemon cancels services as it stops (maybe again while this runs): the worker
            # processes must still be stopped (bounded), so the clean-up is shielded to its end.
            await finish_despite_cancellation(self._stop(tasks, daemon.settings.engine.shutdown_grace))

    async def _stop(self, tasks: list[asyncio.Task[None]], grace: float) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.runner.stop(grace)
        if self.runs is not None:
            self.runs.close()

    @property
    def busy(self) -> bool:
        """Facts are waiting or being written."""
        return self._busy or bool(self._facts)

    # -- requests --------------------------------------------------------------------------------

    async def submit(self, fact: Fact) -> None:
        """Hand a fact to the loop; returns once its records are in the log."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._facts.append((fact, future))
        self._wake.set()
        await future

    def _post(self, fact: Fact) -> None:
        self._facts.append((fact, None))
        self._wake.set()

    # -- definitions -----------------------------------------------------------------------------

    def key_of(self, flow: FlowSpec) -> str:
        """``name@version`` of a definition (version: the digest of its JSON form, as stored with runs)."""
        hit = self._keys.get(id(flow))
        if hit is not None and hit[0] is flow:
            return hit[1]
        key = f"{flow.name}@{definition_version(flow_to_json(flow))}"
        self._keys[id(flow)] = (flow, key)
        self._by_key.setdefault(key, flow)
        return key

    def _stored(self, definition: dict[str, Any]) -> FlowSpec:
        """The definition a run was started with (one object per version)."""
        key = f"{definition.get('name')}@{definition_version(definition)}"
        flow = self._by_key.get(key)
        if flow is None:
            flow = flow_from_json(definition)
            self._by_key[key] = flow
            self._keys[id(flow)] = (flow, key)
        return flow

    def _needed(self) -> dict[str, FlowSpec]:
        """Every definition the step worker must hold: the loaded ones and those runs in memory use."""
        needed = {self.key_of(f): f for f in self.flows.values()}
        for run in self.machine.runs.values():
            needed.setdefault(self.key_of(run.flow), run.flow)
        return needed

    def _sync_runner(self, *, prune: bool = False) -> None:
        """Give the step worker the definitions it lacks (and, with ``prune``, drop those no run uses)."""
        needed = self._needed()
        if not self.runner.has(set(needed)) or (prune and len(needed) < len(self.runner.flows)):
            self.runner.reload(needed)
        kept = {id(f) for f in needed.values()}
        self._keys = {i: v for i, v in self._keys.items() if i in kept}
        self._by_key = {k: f for k, f in self._by_key.items() if id(f) in kept}

    async def reload(self, flows: Mapping[str, FlowSpec], pools: Mapping[str, int] | None = None) -> dict[str, Any]:
        """Take new definitions: new runs use them; runs already going keep theirs. Returns what changed."""
        merged = dict(self.machine.pools)
        for name, capacity in dict(pools or {}).items():
            merged.setdefault(name, int(capacity))
        for flow in flows.values():
            problems = flow.problems(merged)
            if problems:
                raise WorkflowError(f"flow {flow.name}: " + "; ".join(problems))
        old = {name: self.key_of(f) for name, f in self.flows.items()}
        new = {name: self.key_of(f) for name, f in flows.items()}
        versions = {n: k.rpartition("@")[2] for n, k in new.items()}
        changes: dict[str, Any] = {
            "added": sorted(set(new) - set(old)),
            "changed": sorted(n for n in new if n in old and new[n] != old[n]),
            "removed": sorted(set(old) - set(new)),
            "versions": versions,
        }
        self.machine.pools = merged
        self.flows = dict(flows)
        self.rules = rules_of(self.flows)
        self._sync_runner(prune=True)
        if changes["added"] or changes["changed"] or changes["removed"]:
            log.info(
                "workflows reloaded: added %s; changed %s; removed %s (runs already going keep their definition)",
                ", ".join(changes["added"]) or "none",
                ", ".join(f"{n} -> {versions[n]}" for n in changes["changed"]) or "none",
                ", ".join(changes["removed"]) or "none",
            )
        return changes

    def _flow(self, name: str) -> FlowSpec:
        flow = self.flows.get(name)
        if flow is None:
            raise WorkflowError(f"no flow called {name!r} is loaded (known: {', '.join(sorted(self.flows)) or 'none'})")
        return flow

    async def start_run(
        self,
        flow_name: str,
        triggers: Iterable[tuple[str, str]] = (),
        *,
        run_id: str | None = None,
        mode: RunMode = RunMode.RESTART,
    ) -> str:
        """Start a run (restart), or recover the latest run of ``run_id``'s chain (recover)."""
        assert self.runs is not None
        runs = self.runs
        flow = self._flow(flow_name)
        pairs = [(str(s), str(e)) for s, e in triggers]
        if mode is RunMode.RECOVER:
            return await self._recover(flow, run_id)
        if mode is RunMode.CONTINUE:
            if run_id is None:
                latest = await asyncio.to_thread(runs.latest, flow=flow.name)
                if latest is None:
                    raise WorkflowError(f"flow {flow.name} has no run to continue")
                run_id = latest.run_id
            await self.resume(run_id, mode="continue")
            return run_id
        run_id = run_id or f"{flow.name}-{uuid.uuid4().hex[:10]}"
        fresh = await asyncio.to_thread(
            runs.insert, run_id, flow.name, origin=run_id, mode=mode.value, recovers=None,
            definition=flow_to_json(flow), triggers=[list(p) for p in pairs],
        )  # fmt: skip
        if not fresh or run_id in self.machine.runs:
            return run_id  # the same request again (a redelivered start event): nothing more to do
        await self.submit(lambda: self.machine.start(run_id, flow, self.clock.time(), pairs, mode=mode))
        return run_id

    async def _recover(self, flow: FlowSpec, run_id: str | None) -> str:
        assert self.runs is not None
        runs = self.runs
        row = await asyncio.to_thread(runs.get, run_id) if run_id else None
        origin = row.origin if row is not None else run_id
        latest = await asyncio.to_thread(runs.latest, origin=origin) if origin else None
        if latest is None:
            latest = await asyncio.to_thread(runs.latest, flow=flow.name)
        if latest is None:
            raise WorkflowError(f"flow {flow.name} has no run to recover")
        if latest.run_id in self.machine.runs and not self.machine.runs[latest.run_id].done:
            raise WorkflowError(f"run {latest.run_id} is still running: cancel it before recovering it")
        previous = await asyncio.to_thread(load_run, runs, latest)
        number = await asyncio.to_thread(runs.count_of_origin, latest.origin)
        new_id = f"{latest.origin}~{number}"
        await asyncio.to_thread(
            runs.insert, new_id, flow.name, origin=latest.origin, mode=RunMode.RECOVER.value,
            recovers=latest.run_id, definition=flow_to_json(flow), triggers=[],
        )  # fmt: skip
        now = self.clock.time()
        await self.submit(lambda: self.machine.start(new_id, flow, now, mode=RunMode.RECOVER, previous=previous))
        return new_id

    async def trigger(self, run_id: str, seq: str, event: str) -> None:
        await self._ensure_loaded(run_id)
        await self.submit(lambda: self.machine.trigger(run_id, seq, event, self.clock.time()))

    async def cancel(self, run_id: str) -> None:
        await self._ensure_loaded(run_id)
        await self.submit(lambda: self.machine.cancel(run_id, self.clock.time()))

    async def resume(self, run_id: str, *, mode: str = "continue", retry_failed: bool = False) -> None:
        """Continue a run (``continue``), optionally running its failed steps again (``retry``)."""
        await self._ensure_loaded(run_id)
        await self.submit(functools.partial(self._resume_fact, run_id, mode=mode, retry_failed=retry_failed))

    async def wait_finished(self, run_id: str, timeout: float | None = None) -> str:
        run = self.machine.runs.get(run_id)
        if run is not None and run.done:
            return run.status
        if run is None and self.runs is not None:
            row = await asyncio.to_thread(self.runs.get, run_id)
            if row is not None and row.status != "running":
                return row.status
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(future)
        return await asyncio.wait_for(future, timeout)

    # -- recovery --------------------------------------------------------------------------------

    async def _ensure_loaded(self, run_id: str) -> None:
        """Bring a run that is not in memory (finished, or of an earlier daemon) back from the log."""
        if run_id in self.machine.runs:
            return
        assert self.runs is not None
        row = await asyncio.to_thread(self.runs.get, run_id)
        if row is None:
            raise WorkflowError(f"no run {run_id!r}")
        flow = self._stored(row.definition)  # the definition the run started with, not today's
        records = await asyncio.to_thread(records_of, self.runs, run_id)
        run = self.machine.replay(run_id, flow, records)
        self._sync_runner()
        self._stale[run_id] = {(seq, step, run.seqs[seq].steps[step].attempt) for seq, step in run.active}
        self._numbers[run_id] = len(records)
        for timer in run.timers.values():
            self._arm(timer.due, run_id, timer.id)

    async def _recover_unfinished(self) -> None:
        assert self.runs is not None
        rows = await asyncio.to_thread(self.runs.runs, status="running", limit=1_000_000)
        for row in rows:
            records = await asyncio.to_thread(records_of, self.runs, row.run_id)
            if not records:
                flow = self._stored(row.definition)
                pairs = [(str(s), str(e)) for s, e in row.triggers]
                log.info("run %s: starting it (the daemon stopped before its first record)", row.run_id)
                self._post(functools.partial(self._start_fact, row.run_id, flow, pairs))
                continue
            await self._ensure_loaded(row.run_id)
            run = self.machine.runs[row.run_id]
            if run.done:
                await asyncio.to_thread(self.runs.set_status, row.run_id, run.status, run.stopping)
                self.machine.forget(row.run_id)
                continue
            log.info("run %s of flow %s: resuming after a restart", row.run_id, row.flow)
            self._post(functools.partial(self._resume_fact, row.run_id))

    def _start_fact(self, run_id: str, flow: FlowSpec, pairs: list[tuple[str, str]]) -> list[Record]:
        return self.machine.start(run_id, flow, self.clock.time(), pairs)

    def _resume_fact(self, run_id: str, *, mode: str = "resume", retry_failed: bool = False) -> list[Record]:
        if run_id not in self.machine.runs:
            return []
        stale = self._stale.pop(run_id, set())
        return self.machine.resume(run_id, self.clock.time(), retry_failed=retry_failed, mode=mode, stale=stale)

    # -- the loop --------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._busy = False
            await self._wake.wait()
            self._wake.clear()
            self._busy = True
            batch, self._facts = self._facts, []
            records: list[Record] = []
            failed: list[tuple[asyncio.Future[None] | None, BaseException]] = []
            for fact, future in batch:
                try:
                    records.extend(fact())
                except Exception as exc:
                    log.exception("workflow fact failed")
                    failed.append((future, exc))
            if records:
                try:
                    await asyncio.to_thread(self._persist, records)
                except Exception as exc:
                    log.exception("could not write workflow records; stopping the daemon to stay consistent")
                    for _fact, future in batch:
                        if future is not None and not future.done():
                            future.set_exception(exc)
                    if self.daemon is not None:
                        self.daemon.request_stop()
                    return
                self._act(records)
            bad = {id(f) for f, _ in failed}
            for future, problem in failed:
                if future is not None and not future.done():
                    future.set_exception(problem)
            for _fact, future in batch:
                if future is not None and id(future) not in bad and not future.done():
                    future.set_result(None)

    def _persist(self, records: list[Record]) -> None:
        assert self.daemon is not None and self.daemon.store is not None and self.runs is not None
        events = []
        for record in records:
            number = self._numbers.get(record.run_id, 0) + 1
            self._numbers[record.run_id] = number
            run = self.machine.runs.get(record.run_id)
            events.append(event_of(record, run.flow.name if run else "", number))
        self.daemon.store.append(events)
        for record in records:
            if record.kind == "run.finished":
                self.runs.set_status(record.run_id, str(record.data["status"]), record.data.get("reason"))
            elif record.kind == "run.resumed":
                self.runs.set_status(record.run_id, "running", None)

    def _act(self, records: list[Record]) -> None:
        assert self.daemon is not None
        self.daemon.notify_appended()
        attempts: list[Attempt] = []
        for record in records:
            data = record.data
            if record.kind == "step.active":
                run = self.machine.runs[record.run_id]
                attempts.append(
                    Attempt(
                        record.run_id, self.key_of(run.flow), str(data["seq"]), str(data["step"]), int(data["attempt"])
                    )
                )
            elif record.kind == "timer.set":
                self._arm(float(data["due"]), record.run_id, str(data["timer"]))
            elif record.kind == "timer.fired":
                self.lateness.append(float(data.get("late", 0.0)))
            elif record.kind == "run.finished":
                self._finished(record.run_id, str(data["status"]), data.get("reason"))
        if attempts:
            if not self.runner.has({a.flow for a in attempts}):
                self._sync_runner()  # a run of a definition the worker does not hold yet
            self.runner.run(attempts)

    def _finished(self, run_id: str, status: str, reason: Any) -> None:
        log.info("run %s finished: %s%s", run_id, status, f" ({reason})" if reason else "")
        for future in self._waiters.pop(run_id, []):
            if not future.done():
                future.set_result(status)
        self.machine.forget(run_id)
        self._numbers.pop(run_id, None)

    def _on_outcomes(self, outcomes: list[Outcome]) -> None:
        def fact() -> list[Record]:
            now = self.clock.time()
            records: list[Record] = []
            for o in outcomes:
                a = o.attempt
                if o.status == "interrupted":
                    records += self.machine.interrupted(a.run_id, a.seq, a.step, a.attempt, now)
                else:
                    records += self.machine.step_result(
                        a.run_id, a.seq, a.step, a.attempt, now, ok=o.status == "ok", result=o.result,
                        error=o.error, retry=o.status != "fail", retry_after=o.retry_after, traceback=o.traceback,
                    )  # fmt: skip
            return records

        self._post(fact)

    # -- timers ----------------------------------------------------------------------------------

    def _arm(self, due: float, run_id: str, timer_id: str) -> None:
        heapq.heappush(self._timers, (due, run_id, timer_id))
        if self._timers[0][1:] == (run_id, timer_id):
            self._timer_wake.set()

    async def _timer_loop(self) -> None:
        """Sleep until the earliest timer is due (woken early when an earlier one is armed)."""
        while True:
            now = self.clock.time()
            due: list[tuple[str, str]] = []
            while self._timers and self._timers[0][0] <= now:
                _, run_id, timer_id = heapq.heappop(self._timers)
                due.append((run_id, timer_id))
            if due:
                self._post(functools.partial(self._fire, due))
            self._timer_wake.clear()
            wait = None if not self._timers else max(0.0, self._timers[0][0] - self.clock.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_wake.wait(), wait)

    def _fire(self, due: list[tuple[str, str]]) -> list[Record]:
        records: list[Record] = []
        for run_id, timer_id in due:
            records += self.machine.timer_due(run_id, timer_id, self.clock.time())
        return records
