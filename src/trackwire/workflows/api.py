"""eventor's interface on Trackwire's engine: build a flow, trigger events, ``run()``, ``close()``.

``run()`` starts an embedded engine on the flow's store (a SQLite file: the run survives a crash and
can be recovered or continued), runs the flow to its end and returns True on success. Inside the
daemon the same definitions run from ``[workflows] paths`` and are started by events instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trackwire.core.workflows.spec import Ev, Replay, RunMode, StepStatus
from trackwire.workflows.definition import FlowBuilder

__all__ = [
    "RUN_CONTINUE",
    "RUN_RECOVER",
    "RUN_RESTART",
    "STEP_ACTIVE",
    "STEP_COMPLETE",
    "STEP_FAILURE",
    "STEP_READY",
    "STEP_RERUN",
    "STEP_SKIP",
    "STEP_SUCCESS",
    "Workflow",
]

log = logging.getLogger("trackwire.workflows")

RUN_RESTART = RunMode.RESTART
RUN_RECOVER = RunMode.RECOVER
RUN_CONTINUE = RunMode.CONTINUE
STEP_READY = StepStatus.READY
STEP_ACTIVE = StepStatus.ACTIVE
STEP_SUCCESS = StepStatus.SUCCESS
STEP_FAILURE = StepStatus.FAILURE
STEP_COMPLETE = StepStatus.COMPLETE
STEP_RERUN = Replay.RERUN
STEP_SKIP = Replay.SKIP


class Workflow(FlowBuilder):
    """A flow you build and run from your own program, like ``eventor.Eventor``.

    ``store`` is the SQLite file that keeps the runs (default ``<name>.trackwire.db`` in the current
    folder). ``run_mode`` is :data:`RUN_RESTART` (a new run), :data:`RUN_RECOVER` (rerun or skip each
    step of the latest run of ``run_id``'s chain by its last status) or :data:`RUN_CONTINUE`
    (carry on the run ``run_id`` where it stopped). ``config`` takes ``max_concurrent``,
    ``stop_on_exception``, ``workers`` (steps running at once in the worker process), ``pools`` and
    ``timeout`` (the default step timeout, seconds).
    """

    def __init__(
        self,
        name: str = "",
        store: str | Path = "",
        run_mode: RunMode = RunMode.RESTART,
        run_id: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        options = dict(config or {})
        super().__init__(
            name or "workflow",
            max_concurrent=int(options.pop("max_concurrent", 0)),
            stop_on_exception=bool(options.pop("stop_on_exception", True)),
        )
        self.store = Path(store) if store else Path(f"{self.name}.trackwire.db")
        self.run_mode = RunMode(run_mode)
        self.run_id = run_id
        self.pools.update({str(k): int(v) for k, v in dict(options.pop("pools", {})).items()})
        self.workers = int(options.pop("workers", 8))
        self.timeout = float(options.pop("timeout", 3600.0))
        options.pop("LOGGING", None)
        options.pop("sleep_between_loops", None)  # eventor's polling; the engine does not poll
        if options:
            raise TypeError(f"unknown Workflow config keys: {sorted(options)}")
        self._triggers: list[tuple[str, str]] = []
        self.status: str | None = None

    def trigger_event(self, event: Ev | str, sequence: Any = None) -> None:
        """Raise ``event`` for ``sequence`` when the flow runs; each event fires once per sequence."""
        name = event if isinstance(event, str) else event.name
        self._triggers.append(("" if sequence is None else str(sequence), name))

    def run(self, max_loops: int = -1, *, timeout: float | None = None) -> bool:
        """Run the flow until it ends; True when it succeeded.

        ``max_loops`` is accepted for eventor compatibility; with a positive value the run stops
        being driven after the steps that are due now (delayed work stays stored for a later
        ``RUN_CONTINUE``).
        """
        return asyncio.run(self._run(max_loops, timeout))

    async def _run(self, max_loops: int, timeout: float | None) -> bool:
        from trackwire.config import load_settings
        from trackwire.runtime.daemon import Daemon
        from trackwire.workflows.service import WorkflowService

        spec = self.spec()
        settings = load_settings(
            None,
            overrides={"store.url": f"sqlite:///{self.store.resolve()}", "web.enabled": False, "log.file": ""},
        )
        service = WorkflowService(
            {spec.name: spec}, pools=self.pools, max_concurrent=0, workers=self.workers, timeout=self.timeout
        )
        daemon = Daemon(settings, services=[service])
        runner = asyncio.create_task(daemon.run(install_signals=False))
        try:
            await _wait_ready(service, runner)
            run_id = await service.start_run(spec.name, self._triggers, run_id=self.run_id, mode=self.run_mode)
            self.run_id = run_id
            if max_loops > 0:
                self.status = await _settle(service, run_id)
            else:
                self.status = await service.wait_finished(run_id, timeout)
        finally:
            daemon.request_stop()
            await asyncio.wait_for(runner, 60)
        log.info("Processing finished with: %s", self.status)
        return self.status == "success"

    def close(self) -> None:
        """Nothing stays open between runs; kept so eventor programs run unchanged."""


async def _wait_ready(service: Any, runner: asyncio.Task[None]) -> None:
    ready = asyncio.create_task(service.ready.wait())
    await asyncio.wait({ready, runner}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        ready.cancel()
        runner.result()
        raise RuntimeError("the engine stopped before the workflow service was ready")
    if not ready.done():
        ready.cancel()
        raise TimeoutError("the workflow service did not start within 120 s")


async def _settle(service: Any, run_id: str) -> str:
    """Drive the run until nothing is running or queued (timers may remain): eventor's single loop."""
    while True:
        run = service.machine.runs.get(run_id)
        if run is None or run.done:
            status: str = await service.wait_finished(run_id)
            return status
        if not run.active and not run.queue and not service.busy:
            return "running"
        await asyncio.sleep(0.01)
