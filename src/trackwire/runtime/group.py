"""One ordering group at run time: read its events, keep its ledger, feed its worker process.

Everything here runs on the daemon's event loop; the worker process reports back through callbacks
that only update the ledger and wake the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from trackwire.config import EngineSettings
from trackwire.core.backoff import Backoff
from trackwire.core.ledger import Checkpoint, DeliveryRow, GroupLedger, Item, State
from trackwire.core.matching import TypeIndex
from trackwire.plugins.discovery import GroupSpec
from trackwire.ports import LogRecord, Store
from trackwire.runtime.inprocess import InProcessConsumer, InProcessWorker
from trackwire.runtime.logtail import LogTail
from trackwire.runtime.protocol import Result, RunItem
from trackwire.runtime.worker import Death, WorkerProcess

__all__ = ["GroupRunner", "GroupStats"]

log = logging.getLogger("trackwire.group")

MAX_TYPED_READS = 8


@dataclass
class GroupStats:
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    interrupted: int = 0
    worker_restarts: int = 0
    last_error: str | None = None
    last_traceback: str | None = None
    durations: list[float] = field(default_factory=list)


def start_position(start: str | int, last_id: int) -> int:
    if start == "now":
        return last_id
    if start == "beginning":
        return 0
    return max(0, int(start) - 1)


class GroupRunner:
    def __init__(
        self,
        spec: GroupSpec,
        store: Store,
        tail: LogTail,
        engine: EngineSettings,
        *,
        store_url: str | None,
        log_level: str = "INFO",
        handlers: list[InProcessConsumer] | None = None,
    ) -> None:
        self.spec = spec
        self.handlers = handlers
        self.store = store
        self.tail = tail
        self.engine = engine
        self.store_url = store_url
        self.log_level = log_level
        self.stats = GroupStats()
        self.ledger = GroupLedger(
            max_attempts=spec.max_attempts,
            backoff=Backoff(engine.backoff_base, engine.backoff_cap),
            persist_after=engine.persist_after,
        )
        self.worker: WorkerProcess | InProcessWorker | None = None
        self.index = TypeIndex([])
        self.names: list[str] = []
        self.positions: dict[str, int] = {}
        self.types: list[str] | None = None
        self.deactivated: str | None = None
        self.load_errors: list[str] = []
        self.generation = 0
        self._records: dict[int, LogRecord] = {}
        # caches rebuilt with each worker: event type -> consumer names (type-only matches), names -> positions
        self._names_by_type: dict[str, tuple[str, ...]] = {}
        self._positions_memo: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._wake = asyncio.Event()
        self._persist_all = False
        self._held_up = 0  # items held up behind stuck keys, refreshed at most every 0.1 s
        self._held_up_at = 0.0
        self._restart_at = 0.0
        self._restart_failures = 0
        self._reloading = False
        self._ready = asyncio.Event()
        self.state_version = 0  # bumped on every local (de)activation and store write of it
        self._state_writes = 0

    @property
    def name(self) -> str:
        return self.spec.name

    # -- life cycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Register the group (new groups start per ``start``) and restore its unfinished deliveries."""
        last = await asyncio.to_thread(self.store.last_id)
        record = await asyncio.to_thread(self.store.register_group, self.name, start_position(self.spec.start, last))
        self.generation = record.generation
        self.ledger.position = self.ledger.read_pos = record.position
        rows = await asyncio.to_thread(self.store.load_rows, self.name)
        self.ledger.restore(rows, time.monotonic())
        if record.state == "deactivated":
            self.deactivated = record.reason or "deactivated"
            log.warning(
                "group %s is deactivated (%s): waiting for its file to change or `trackwire plugins reactivate %s`",
                self.name,
                self.deactivated,
                self.name,
            )

    @property
    def in_process(self) -> bool:
        return self.handlers is not None

    async def _start_worker(self) -> bool:
        worker: WorkerProcess | InProcessWorker
        if self.handlers is not None:
            worker = InProcessWorker(
                self.name, self.handlers, self._on_results, self.spec.timeout, self.spec.concurrency
            )
        else:
            worker = WorkerProcess(self.spec, self.store_url, self.log_level, self._on_results, self._on_death)
        try:
            await worker.start()
        except Exception as exc:
            self._restart_failures += 1
            delay = min(60.0, 2.0**self._restart_failures)
            self._restart_at = time.monotonic() + delay
            log.error("group %s: worker process failed to start (%s); next try in %.0f s", self.name, exc, delay)
            return False
        self.worker = worker
        self.load_errors = [str(f) for f in worker.failures]
        for failure in worker.failures:
            log.error("%s\n%s", failure, failure.traceback)
        self.names = [c.name for c in worker.consumers]
        self.positions = {n: i for i, n in enumerate(self.names)}
        self.index = TypeIndex([c.matcher for c in worker.consumers])
        self._names_by_type = {}
        self._positions_memo = {}
        patterns: set[str] = set()
        for consumer in worker.consumers:
            found = consumer.matcher.type_patterns()
            if found is None or any(ch in p for p in found for ch in "*?["):
                patterns = set()
                break
            patterns.update(found)
        # Reading by type costs one indexed query per type: worth it for a few rare types, not for many.
        self.types = sorted(patterns) if patterns and len(patterns) <= MAX_TYPED_READS else None
        log.info(
            "group %s: worker pid %s runs %d callbacks from %d plugins",
            self.name,
            worker.pid,
            len(self.names),
            len(self.spec.plugins) - len(worker.failures),
        )
        self._restart_failures = 0
        self._ready.set()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._loop(stop)
        finally:
            if self.worker is not None:
                await self.worker.stop(self.engine.shutdown_grace)

    async def _loop(self, stop: asyncio.Event) -> None:
        batch = self.engine.batch_size
        max_inflight = batch * 2
        while not stop.is_set():
            now = time.monotonic()
            if self.worker is None or not self.worker.alive:
                if self._reloading or now < self._restart_at:
                    await self._sleep(stop, max(0.05, self._restart_at - now))
                    continue
                if self.worker is not None:
                    self.stats.worker_restarts += 1
                if not await self._start_worker():
                    continue
            worker = self.worker
            assert worker is not None
            worker.check()
            if self.deactivated is None:
                if self.tail.last > self.ledger.read_pos and self._should_read(now, max_inflight * 2):
                    await self._fill(batch)
                self.ledger.due(now)
                running = len(self._inflight)
                if running < max_inflight and worker.alive:
                    items = self.ledger.take_ready(min(batch, max_inflight - running), now)
                    if items:
                        await self._dispatch(items)
                        continue
            self._check_memory()
            timeout = 0.5
            due = self.ledger.next_due()
            if due is not None:
                timeout = max(0.0, min(timeout, due - now))
            if self.deactivated is None and self._should_read(now, max_inflight * 2):
                waiter = asyncio.create_task(self.tail.wait(self.ledger.read_pos, timeout))
                await self._sleep(stop, timeout, waiter)
            else:
                await self._sleep(stop, timeout)

    def _should_read(self, now: float, window: int) -> bool:
        """Read ahead of the worker by about ``window`` runnable items, not more: events wait in the log,
        not in memory, so they are not old (and given rows) by the time they run. Items held up behind a
        retrying or long-running key do not count, so a stuck key never stops the rest; the hard cap is
        ``max_outstanding``."""
        outstanding = self.ledger.outstanding
        if outstanding >= self.engine.max_outstanding:
            return False
        if outstanding < window:
            return True
        if now - self._held_up_at > 0.1:
            self._held_up_at = now
            self._held_up = self.ledger.held_up(now)
        return outstanding - self._held_up < window

    async def _sleep(self, stop: asyncio.Event, timeout: float, extra: asyncio.Task[None] | None = None) -> None:
        self._wake.clear()
        waits: list[asyncio.Task[object]] = [
            asyncio.create_task(self._wake.wait()),
            asyncio.create_task(stop.wait()),
        ]
        if extra is not None:
            waits.append(extra)
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    @property
    def _inflight(self) -> set[int]:
        return self.ledger.running_ids

    async def _fill(self, limit: int) -> None:
        records, covered = await self.tail.read(self.ledger.read_pos, limit, self.types)
        now = time.monotonic()
        names = self.names
        index = self.index
        ledger = self.ledger
        by_type = self._names_by_type
        for record in records:
            if record.id <= ledger.read_pos:
                continue
            matched = by_type.get(record.type)
            if matched is None:
                positions = index.match_lazy(record.type, lambda record=record: record.event)  # type: ignore[misc]
                matched = tuple(names[p] for p in positions)
                if not index.needs_event(record.type):
                    by_type[record.type] = matched
            if matched:
                self._records[record.id] = record
                ledger.offer(record.id, record.key, matched, now)
            else:
                ledger.skip_to(record.id)
        self.ledger.skip_to(covered)

    async def _dispatch(self, items: Sequence[Item]) -> None:
        assert self.worker is not None
        missing = [i.event_id for i in items if i.event_id not in self._records]
        if missing:
            for fetched in await asyncio.to_thread(self.store.get_records, missing):
                self._records[fetched.id] = fetched
        batch: list[RunItem] = []
        memo = self._positions_memo
        for item in items:
            record = self._records.get(item.event_id)
            positions = memo.get(item.consumers)
            if positions is None:
                positions = memo[item.consumers] = tuple(
                    self.positions[n] for n in item.consumers if n in self.positions
                )
            if record is None or not positions:
                # the event is gone from the store, or none of its consumers exists any more
                self.ledger.succeeded(item.event_id)
                self._records.pop(item.event_id, None)
                continue
            batch.append((item.event_id, record.body, positions, item.attempts + 1, item.key))
        if batch:
            self.worker.submit(batch)
            await self.worker.drain()

    # -- what the worker reports -----------------------------------------------------------------

    def _on_results(self, results: list[Result]) -> None:
        now = time.monotonic()
        for event_id, status, position, error, tb, after, duration in results:
            if status == "ok":
                self.ledger.succeeded(event_id)
                self._records.pop(event_id, None)
                self.stats.delivered += 1
                if len(self.stats.durations) < 10_000:
                    self.stats.durations.append(duration)
            elif status == "notrun":
                self.ledger.interrupted(event_id)
            else:
                item = self.ledger.items.get(event_id)
                if item is None:
                    continue
                remaining = None
                if 0 <= position < len(self.names) and self.names[position] in item.consumers:
                    remaining = item.consumers[item.consumers.index(self.names[position]) :]
                self._fail(
                    event_id,
                    now,
                    error or status,
                    tb,
                    remaining,
                    after,
                    final=status == "fail",
                    retry=status == "retry",
                )
        self._wake.set()

    def _fail(
        self,
        event_id: int,
        now: float,
        error: str,
        tb: str | None,
        remaining: tuple[str, ...] | None,
        after: float | None,
        *,
        final: bool = False,
        retry: bool = False,
    ) -> None:
        self.stats.failed += 1
        self.stats.last_error = error
        self.stats.last_traceback = tb
        if self.spec.policy == "deactivate" and not retry:
            self.ledger.failed(event_id, now, error, tb, remaining=remaining, retry_after=0.0, hold=True)
            self.deactivate(f"event {event_id}: {error}")
            return
        outcome = self.ledger.failed(event_id, now, error, tb, remaining=remaining, retry_after=after, final=final)
        if outcome.dead:
            self.stats.dead += 1
            self._records.pop(event_id, None)
            log.error(
                "group %s: event %s dead-lettered after %d attempts: %s",
                self.name,
                event_id,
                outcome.attempts,
                error,
                extra={"event_id": event_id, "plugin": self.name},
            )
        else:
            self.stats.retried += 1
            log.warning(
                "group %s: event %s failed (attempt %d), retry in %.1f s: %s",
                self.name,
                event_id,
                outcome.attempts,
                (outcome.retry_at or now) - now,
                error,
                extra={"event_id": event_id, "plugin": self.name},
            )

    def _on_death(self, death: Death) -> None:
        now = time.monotonic()
        running = sorted(self._inflight)
        if not death.expected:
            log.error("group %s: %s (events running: %s)", self.name, death.reason, running or "none")
        for event_id in running:
            if event_id in death.culprits and not death.expected:
                self._fail(event_id, now, death.reason, death.traceback, None, None)
            else:
                self.stats.interrupted += 1
                self.ledger.interrupted(event_id)
        self._wake.set()

    def _check_memory(self) -> None:
        worker = self.worker
        limit = self.spec.max_memory_mb
        if worker is None or limit is None or not worker.alive or worker.rss <= limit * 1024 * 1024:
            return
        log.warning(
            "group %s: worker uses %d MB, over its %d MB limit: recycling it",
            self.name,
            worker.rss // (1024 * 1024),
            limit,
        )
        worker.rss = 0
        asyncio.get_running_loop().create_task(self.restart_worker(), name=f"recycle:{self.name}")

    async def restart_worker(self, spec: GroupSpec | None = None) -> None:
        """Stop the worker gracefully (running callbacks get the shutdown grace) and start a new one."""
        if self._reloading:
            return
        self._reloading = True
        try:
            if spec is not None:
                self.spec = spec
            old = self.worker
            if old is not None:
                await old.stop(self.engine.shutdown_grace)
            self.worker = None
            self.stats.worker_restarts += 1
            await self._start_worker()
        finally:
            self._reloading = False
            self._wake.set()

    # -- operator actions ------------------------------------------------------------------------

    def deactivate(self, reason: str) -> None:
        if self.deactivated is not None:
            return
        self.deactivated = reason
        self._persist_all = True
        log.error(
            "group %s deactivated: %s. It resumes from its last good event when its file changes "
            "or on `trackwire plugins reactivate %s`.",
            self.name,
            reason,
            self.name,
        )
        self.state_version += 1
        asyncio.get_running_loop().create_task(self._write_state("deactivated", reason))

    async def reactivate(self) -> None:
        if self.deactivated is None:
            return
        self.deactivated = None
        resume = getattr(self.worker, "resume", None)  # worker processes halt after a deactivating failure
        if resume is not None:
            resume()
        for item in list(self.ledger.items.values()):
            if item.state is State.RETRY:
                item.retry_at = 0.0
        self.ledger.due(time.monotonic() + 1e9)
        self.state_version += 1
        await self._write_state("active", None)
        log.info("group %s reactivated", self.name)
        self._wake.set()

    async def _write_state(self, state: str, reason: str | None) -> None:
        self._state_writes += 1
        try:
            await asyncio.to_thread(self.store.set_group_state, self.name, state, reason)
        finally:
            self._state_writes -= 1
            self.state_version += 1

    def state_settled(self, version: int) -> bool:
        """No (de)activation happened here since ``version`` and none is being written: a state read
        from the store meanwhile is not stale."""
        return self._state_writes == 0 and self.state_version == version

    async def pick_up_replays(self, generation: int) -> None:
        """Rows queued from outside (replay, dead-letter replay): load the pending ones we do not hold."""
        if self.worker is None or not self._ready.is_set():
            return  # consumer names are not known yet: pick the rows up once the worker has loaded
        self.generation = generation
        rows = await asyncio.to_thread(self.store.load_rows, self.name, ("pending",))
        fresh = [r for r in rows if r.event_id not in self.ledger.items]
        for row in rows:
            if row.event_id in self.ledger.items:
                # the operator queued an event we already hold: the row now exists, so it must be
                # rewritten from our state and deleted when the item finishes
                self.ledger.adopt_row(row.event_id)
        if not fresh:
            return
        resolved: list[DeliveryRow] = []
        records = {r.id: r for r in await asyncio.to_thread(self.store.get_records, [r.event_id for r in fresh])}
        drop: list[DeliveryRow] = []
        for row in fresh:
            record = records.get(row.event_id)
            if record is None:
                drop.append(row)
                continue
            event = record.event
            matched = tuple(self.names[p] for p in self.index.match(event))
            wanted = tuple(
                n
                for n in matched
                if not row.consumers
                or n in row.consumers
                or any(n.startswith(c + ".") or n.split(".", 1)[0] == c for c in row.consumers)
            )
            if not wanted:
                drop.append(row)
                continue
            self._records[row.event_id] = record
            resolved.append(
                DeliveryRow(row.event_id, row.key, State.PENDING, row.attempts, None, wanted, row.error, row.traceback)
            )
        self.ledger.replay(resolved + drop, time.monotonic())
        for row in drop:
            self.ledger.succeeded(row.event_id)
        log.info("group %s: %d replayed deliveries queued", self.name, len(resolved))
        self._wake.set()

    # -- durability ------------------------------------------------------------------------------

    def plan(self, now: float) -> Checkpoint | None:
        persist_all = self._persist_all
        plan = self.ledger.checkpoint(now, persist_all=persist_all)
        if plan.empty and plan.position == self.ledger.position:
            return None
        return plan

    def committed(self, plan: Checkpoint) -> None:
        self.ledger.committed(plan)
        if self._persist_all and self.deactivated is not None:
            self._persist_all = False

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self._ready.is_set()
