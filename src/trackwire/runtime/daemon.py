"""The daemon: supervises the log tail, group runners, sources, the committer, reloads and the web app.

Stops gracefully on SIGTERM/SIGINT: sources stop appending, running callbacks get the shutdown
grace, the last progress is written, the store is closed. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from trackwire.config import Settings
from trackwire.plugins.discovery import GroupSpec, discover
from trackwire.ports import Store
from trackwire.runtime.group import GroupRunner
from trackwire.runtime.inprocess import InProcessConsumer
from trackwire.runtime.logtail import LogTail
from trackwire.runtime.systemd import notify, watchdog_interval
from trackwire.sources import Source
from trackwire.store import open_store

if TYPE_CHECKING:
    from trackwire.automations.service import AutomationService
    from trackwire.workflows.service import WorkflowService

__all__ = ["Daemon", "Service"]

log = logging.getLogger("trackwire.daemon")

Service = Callable[["Daemon"], Awaitable[None]]


@dataclass
class Daemon:
    settings: Settings
    store: Store | None = None
    extra_sources: list[Source] = field(default_factory=list)
    # Long-running parts started with the daemon (automations, workflows): ``async def service(daemon)``.
    services: list[Service] = field(default_factory=list)

    runners: dict[str, GroupRunner] = field(default_factory=dict, init=False)
    sources: list[Source] = field(default_factory=list, init=False)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    started: float = field(default_factory=time.time, init=False)
    tail: LogTail | None = field(default=None, init=False)
    source_health: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    # Set by the automations and workflows services while they run (the dashboard and tests reach them here).
    automations: AutomationService | None = field(default=None, init=False)
    workflows: WorkflowService | None = field(default=None, init=False)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)
    _appended: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    @property
    def store_url(self) -> str:
        return self.settings.store_url

    def request_stop(self) -> None:
        if not self.stop_event.is_set():
            log.info("stopping: finishing running callbacks (up to %.0f s)", self.settings.engine.shutdown_grace)
            self.stop_event.set()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        count = {"n": 0}

        def on_signal(signum: int) -> None:
            count["n"] += 1
            if count["n"] > 1:
                log.warning("second %s: stopping now", signal.Signals(signum).name)
                for task in self._tasks.values():
                    task.cancel()
            self.request_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal, sig)

    def _spawn(self, name: str, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s crashed", name)

        self._tasks[name] = asyncio.create_task(guarded(), name=name)

    async def run(self, *, install_signals: bool = True, ready: Callable[[Daemon], None] | None = None) -> None:
        previous = gc.get_threshold()
        if self.settings.engine.gc_threshold:
            # Python collects its youngest generation every 700 allocations; a burst allocates hundreds of
            # thousands of short-lived objects, and the collections it sets off (young ones, and full ones
            # walking the whole trigger state) were a third of a burst's CPU time and most of an all-match one.
            gc.set_threshold(max(previous[0], self.settings.engine.gc_threshold), *previous[1:])
        try:
            await self._run(install_signals, ready)
        finally:
            gc.set_threshold(*previous)

    async def _run(self, install_signals: bool, ready: Callable[[Daemon], None] | None) -> None:
        if install_signals:
            self._install_signals()
        if self.store is None:
            self.store = open_store(self.store_url)
        store = self.store
        last = await asyncio.to_thread(store.last_id)
        self.tail = LogTail(store, start=last, poll=self.settings.engine.poll_interval)
        groups = discover(self.settings)
        for spec in groups:
            await self._add_group(spec)
        self._spawn("tail", self.tail.run(self.stop_event))
        self._spawn("nudge", self._forward_appends())
        for runner in self.runners.values():
            self._spawn(f"group:{runner.name}", runner.run(self.stop_event))
        self._spawn("control", self._control())
        self._spawn("reload", self._watch_plugins())
        self.sources = self._make_sources()
        for source in self.sources:
            self._spawn(f"source:{source.name}", self._run_source(source))
        for number, service in enumerate([*self.services, *self._make_services()]):
            self._spawn(f"service:{number}", service(self))
        if self.settings.web.enabled:
            self._spawn("web", self._serve_web())
        committer = asyncio.create_task(self._commit_loop(), name="committer")
        await asyncio.gather(*(r.wait_ready(30.0) for r in self.runners.values()))
        log.info("trackwire is running: %d groups, store %s", len(self.runners), self.store_url)
        notify("READY=1", f"STATUS=running {len(self.runners)} groups")
        if watchdog_interval() is not None:
            self._spawn("watchdog", self._ping_watchdog())
        if ready is not None:
            ready(self)
        await self.stop_event.wait()
        await self._shutdown(committer)

    async def _ping_watchdog(self) -> None:
        """Tell systemd the loop is alive; a wedged loop stops the pings and systemd restarts us."""
        interval = watchdog_interval() or 10.0
        while True:
            notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _shutdown(self, committer: asyncio.Task[None]) -> None:
        notify("STOPPING=1")
        order = [n for n in self._tasks if n.startswith(("source:", "service:"))] + [
            "reload",
            "control",
            "web",
            "watchdog",
        ]
        for name in order:
            task = self._tasks.get(name)
            if task is not None:
                task.cancel()
        groups = [t for n, t in self._tasks.items() if n.startswith("group:")]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait(groups, timeout=self.settings.engine.shutdown_grace + 1.5) if groups else None
        committer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await committer
        await self.commit()
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self.store is not None:
            self.store.close()
        log.info("trackwire stopped")

    async def _add_group(self, spec: GroupSpec, handlers: list[InProcessConsumer] | None = None) -> GroupRunner:
        assert self.store is not None and self.tail is not None
        runner = GroupRunner(
            spec,
            self.store,
            self.tail,
            self.settings.engine,
            store_url=self.store_url,
            log_level=self.settings.log.level,
            handlers=handlers,
        )
        await runner.open()
        self.runners[spec.name] = runner
        return runner

    async def add_consumer_group(
        self,
        name: str,
        handlers: list[InProcessConsumer],
        *,
        start: str | int = "now",
        policy: Literal["retry", "deactivate"] = "retry",
        max_attempts: int | None = None,
        timeout: float | None = None,
        concurrency: int = 64,
    ) -> GroupRunner:
        """Start an in-process ordering group (automations, workflows) fed from the log like plugins are.

        Call it from a service (see ``services``) once the daemon runs. Its handlers run in the daemon's
        event loop, in order per event, with the same ledger, retries, dead letters and durable progress.
        """
        spec = GroupSpec(
            name=name,
            plugins=(),
            policy=policy,
            timeout=timeout or self.settings.engine.timeout,
            max_attempts=max_attempts or self.settings.engine.max_attempts,
            concurrency=concurrency,
            start=start,
            max_memory_mb=None,
        )
        runner = await self._add_group(spec, handlers)
        self._spawn(f"group:{name}", runner.run(self.stop_event))
        await runner.wait_ready(30.0)
        return runner

    def notify_appended(self) -> None:
        """Tell the engine that something was appended from inside this process."""
        self._appended.set()

    def _make_services(self) -> list[Service]:
        """Services the configuration asks for."""
        services: list[Service] = []
        if self.settings.workflows.paths:
            from trackwire.workflows.loading import workflow_service

            services.append(workflow_service(self.settings))
        if self.settings.automations.enabled and self.settings.automations.path is not None:
            from trackwire.automations.service import automation_service

            services.append(automation_service)
        return services

    def _make_sources(self) -> list[Source]:
        sources: list[Source] = list(self.extra_sources)
        if self.settings.demo.enabled:
            from trackwire.sources.demo import DemoSource

            sources.append(DemoSource(self.settings.demo.rate, self.settings.demo.shots))
        if self.settings.shotgrid.site:
            from trackwire.sources.shotgrid import ShotgridSource

            sources.append(ShotgridSource(self.settings.shotgrid))
        if self.settings.kitsu.enabled:
            from trackwire.sources.kitsu import KitsuSource

            sources.append(KitsuSource.from_settings(self.settings.kitsu, self.settings.base_dir))
        if self.settings.ftrack.server_url:
            from trackwire.sources.ftrack import FtrackSource

            sources.append(FtrackSource(self.settings.ftrack))
        return sources

    async def _run_source(self, source: Source) -> None:
        assert self.store is not None
        health = self.source_health.setdefault(source.name, {"state": "running", "error": None})
        try:
            await source.run(self.store, self.stop_event, self._appended)
        except Exception as exc:
            health.update(state="failed", error=f"{type(exc).__name__}: {exc}")
            raise

    async def _forward_appends(self) -> None:
        assert self.tail is not None
        while True:
            await self._appended.wait()
            self._appended.clear()
            self.tail.nudge()

    # -- durable progress ------------------------------------------------------------------------

    async def commit(self) -> None:
        """Write every group's checkpoint in one transaction."""
        assert self.store is not None
        now = time.monotonic()
        plans = [(r, p) for r in self.runners.values() if (p := r.plan(now)) is not None]
        if not plans:
            return
        writer = getattr(self.store, "write_checkpoints", None)
        if writer is not None:
            await asyncio.to_thread(writer, [(r.name, p) for r, p in plans])
        else:
            for runner, plan in plans:
                await asyncio.to_thread(self.store.write_checkpoint, runner.name, plan)
        for runner, plan in plans:
            runner.committed(plan)

    async def _commit_loop(self) -> None:
        interval = self.settings.engine.checkpoint_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.commit()
            except Exception:
                log.exception("could not write progress; retrying")
                await asyncio.sleep(1.0)

    # -- operator requests and plugin changes ----------------------------------------------------

    async def _control(self) -> None:
        """Notice what the CLI or the web app changed in the store: replays, reactivations."""
        assert self.store is not None
        while True:
            await asyncio.sleep(0.25)
            versions = {name: runner.state_version for name, runner in self.runners.items()}
            for record in await asyncio.to_thread(self.store.groups):
                runner = self.runners.get(record.name)
                if runner is None:
                    continue
                if record.generation != runner.generation:
                    await runner.pick_up_replays(record.generation)
                if not runner.state_settled(versions.get(record.name, -1)):
                    continue  # (de)activated here while we read: the store catches up on its own
                if record.state == "active" and runner.deactivated is not None:
                    await runner.reactivate()
                elif record.state == "deactivated" and runner.deactivated is None:
                    runner.deactivate(record.reason or "deactivated by an operator")

    async def _watch_plugins(self) -> None:
        from trackwire.plugins.reload import watch

        await watch(self)

    async def apply_plugin_changes(self, changed: set[str]) -> None:
        """Reload the groups whose files changed; start groups for new files, stop removed ones."""
        from trackwire.plugins.reload import check_syntax

        specs = {spec.name: spec for spec in discover(self.settings)}
        for name, spec in specs.items():
            runner = self.runners.get(name)
            files = {str(p) for p in spec.files}
            if runner is None:
                runner = await self._add_group(spec)
                self._spawn(f"group:{name}", runner.run(self.stop_event))
                log.info("new plugin group %s started", name)
                continue
            touched = files & changed
            if not touched:
                continue
            problems = [p for p in (check_syntax(f) for f in sorted(touched)) if p]
            if problems:
                for problem in problems:
                    log.error("%s: keeping the previous version running", problem)
                continue
            log.info("group %s: %s changed, reloading", name, ", ".join(sorted(touched)))
            await runner.restart_worker(spec)
            await runner.reactivate()
        for name in list(self.runners):
            if name not in specs and not self.runners[name].in_process:
                runner = self.runners.pop(name)
                task = self._tasks.pop(f"group:{name}", None)
                if task is not None:
                    task.cancel()
                if runner.worker is not None:
                    await runner.worker.stop(self.settings.engine.shutdown_grace)
                log.info("plugin group %s removed", name)

    async def _serve_web(self) -> None:
        try:
            from trackwire.web.server import serve
        except ImportError:
            log.info("web app not available in this build")
            return
        await serve(self, self.settings.web, self.stop_event)
