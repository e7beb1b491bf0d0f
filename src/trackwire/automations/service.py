"""The automation service inside the daemon: evaluates every event of the log, sweeps proactive windows,
records firings durably and hands them to the action executor; reloads definitions when files change.

Durability: an event's delivery finishes only after its evaluation is durable: the firings it produced and a
journal step (the event's id, the evaluation time and low water mark) are committed in one transaction,
together with the event's id (``automation_applied``). The trigger state itself (buckets, windows, partial
compound state) is written as a **checkpoint** now and then (every ``checkpoint_interval`` seconds when the
group is idle, or when the journal grows long), which replaces the journal steps up to its batch. At start
the service loads the checkpoint and replays the journaled steps after it in order, which rebuilds exactly
the state the crashed process had committed. The checkpoint batch commits like any other (its firings and
journal steps); its entries are then written in short transactions between other commits, paused while the
group is busy, and made current by one small one (``store/sqlite/automation_state.py``): until then the
previous checkpoint and the whole journal are the durable state. A redelivered event whose effect is already
durable changes nothing; firing ids are derived from their causes, so a replay cannot record a firing twice.
Commits are grouped: every handler waiting when a commit starts rides on it. A commit therefore costs a few
rows per event, not one JSON row per bucket the event touched (with 100 automations matching every event,
that was ~100 rows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackwire.automations.checkpoint import CheckpointBuilder
from trackwire.automations.definitions import load_folder
from trackwire.automations.executor import ActionExecutor
from trackwire.automations.replay import replay
from trackwire.automations.state import (
    AutomationState,
    CheckpointWrite,
    FiringRecord,
    JournalEntry,
    MemoryAutomationState,
    StateBatch,
)
from trackwire.core.clock import SystemClock
from trackwire.core.event import Event
from trackwire.core.triggers import Automation, Evaluator, Firing, StateKey
from trackwire.errors import Retry
from trackwire.ports import Clock
from trackwire.runtime.inprocess import InProcessConsumer
from trackwire.runtime.shielded import finish_despite_cancellation

if TYPE_CHECKING:
    from trackwire.runtime.daemon import Daemon

__all__ = ["GROUP", "AutomationService", "automation_service", "open_state"]

log = logging.getLogger("trackwire.automations")

GROUP = "automations"
QUIET = 0.1  # seconds without an evaluation before a checkpoint is built or written (unless overdue)


class _Everything:
    """The automation group sees every event: it must notice leaders of ``follows`` whatever their type."""

    def type_patterns(self) -> tuple[str, ...] | None:
        return None

    def type_only(self) -> bool:
        return True  # the engine need not decode an event to know this group wants it

    def matches(self, event: Event) -> bool:
        return True


def open_state(store: object, chunk: int = 2_000) -> AutomationState:
    """The state adapter for a store: SQLite tables next to the log, else in memory (not durable). ``chunk``:
    rows per transaction of a checkpoint write."""
    from trackwire.store.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        from trackwire.store.sqlite.automation_state import SqliteAutomationState

        return SqliteAutomationState(store.path, chunk=chunk)
    log.warning("automation state is kept in memory for this store: a restart forgets half-full buckets")
    return MemoryAutomationState()


@dataclass
class AutomationService:
    daemon: Daemon
    clock: Clock = field(default_factory=SystemClock)
    state: AutomationState | None = None

    evaluator: Evaluator = field(init=False)
    executor: ActionExecutor = field(init=False)
    errors: list[str] = field(default_factory=list, init=False)
    ready: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list, init=False)
    _kick: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _firings: list[Firing] = field(default_factory=list, init=False)
    _applied_pending: list[int] = field(default_factory=list, init=False)
    _applied: set[int] = field(default_factory=set, init=False)
    _journal: list[JournalEntry] = field(default_factory=list, init=False)
    _journaled: int = field(default=0, init=False)  # durable steps since the last checkpoint
    _checkpoint_due: bool = field(default=True, init=False)
    _last_checkpoint: float = field(default=0.0, init=False)
    _last_eval: float = field(default=0.0, init=False)
    _recent: OrderedDict[int, Event] = field(default_factory=OrderedDict, init=False)
    _flusher_waiting: bool = field(default=False, init=False)
    _broken: bool = field(default=False, init=False)
    _recovering: asyncio.Future[None] | None = field(default=None, init=False)
    _taken_at: float = field(default=0.0, init=False)
    # One thread writes the automation state (commits and outcomes take turns, each batched), so the
    # writes never fill asyncio's shared thread pool while they wait for the database.
    _db: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="automation-state"), init=False
    )
    _last_received: float = field(default=0.0, init=False)
    _last_prune: float = field(default=0.0, init=False)
    _watermark: int = field(default=0, init=False)
    # A checkpoint being built in slices between evaluations (see ``checkpoint.py``); nothing of it is written
    # until it is taken whole, in one batch.
    _build: CheckpointBuilder | None = field(default=None, init=False)
    _slice_seconds: float = field(default=0.004, init=False)
    # A taken checkpoint whose entries are being written (from its batch's commit until its write is done or
    # given up); no other checkpoint is built or taken meanwhile.
    _writing: bool = field(default=False, init=False)
    _writer: asyncio.Task[None] | None = field(default=None, init=False)
    _stopping: bool = field(default=False, init=False)  # finish a checkpoint write without pausing

    @property
    def settings(self) -> Any:
        return self.daemon.settings.automations

    @property
    def folder(self) -> Path | None:
        path = self.settings.path
        return None if path is None else self.daemon.settings.resolve(path)

    def _load(self, previous: Sequence[Automation] = ()) -> list[Automation]:
        if self.folder is None:
            return []
        automations, errors = load_folder(self.folder)
        self.errors = [str(e) for e in errors]
        broken = {getattr(e, "path", None) for e in errors}
        kept = [a for a in previous if a.source in broken and a.name not in {b.name for b in automations}]
        for problem in self.errors:
            log.error("automation file problem (keeping the previous version, if any): %s", problem)
        return automations + kept

    async def run(self) -> None:
        daemon = self.daemon
        assert daemon.store is not None
        store = daemon.store
        if self.state is None:
            self.state = await asyncio.to_thread(open_state, store, self.settings.checkpoint_chunk)
        state = self.state
        self.evaluator = Evaluator(
            self._load(),
            lateness=self.settings.lateness,
            max_depth=self.settings.max_depth,
            follow_bound=self.settings.follow_bound,
        )
        await self._restore()
        self.evaluator.start(self.clock.time())
        self._last_checkpoint = time.monotonic()
        # A new automations group starts where the log ended when the daemon started (the tail still holds
        # everything after it), so events appended while the definitions load are not missed.
        start = daemon.tail.first_retained - 1 if daemon.tail is not None else store.last_id()
        record = await asyncio.to_thread(store.register_group, GROUP, start)
        self._applied = await asyncio.to_thread(state.applied, 0)
        self._watermark = await self._compute_watermark(record.position)
        self._last_prune = time.monotonic()
        self.executor = ActionExecutor(
            lambda: self.evaluator.by_name, state, self.settings, self._get_events, self._emit, db=self._db
        )
        log.info("automations: %d loaded from %s", len(self.evaluator.by_name), self.folder)
        tasks = [
            asyncio.create_task(self._flusher(), name="automations:flusher"),
            asyncio.create_task(self.executor.run(daemon.stop_event), name="automations:actions"),
        ]
        await self._commit()  # the restored state (and windows opened at start) as a checkpoint
        try:
            # Evaluation is synchronous and short; a handler then waits for the group commit. Many handlers
            # in flight make each commit (one sync) carry many events, instead of 64 per sync.
            await daemon.add_consumer_group(
                GROUP,
                [InProcessConsumer("automations.evaluate", _Everything(), self._handle, batch=self._handle_many)],
                concurrency=1024,
            )
            tasks.append(asyncio.create_task(self._sweeper(), name="automations:sweeper"))
            tasks.append(asyncio.create_task(self._watch(), name="automations:reload"))
            self.ready.set()
            await daemon.stop_event.wait()
        finally:
            # The daemon cancels a service to stop it, and cancels what is left once more a little later: the
            # final checkpoint must not be cut by that second cancel (the state thread and its connection
            # would be left open, and the stop would not checkpoint).
            await finish_despite_cancellation(self._stop(tasks, state))

    async def _stop(self, tasks: list[asyncio.Task[Any]], state: AutomationState) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._final_checkpoint()
        self._db.shutdown(wait=True)
        state.close()

    # -- evaluation ------------------------------------------------------------------------------

    def _low_water(self) -> int:
        """Every event up to this id has been evaluated and will not be delivered again (as far as known)."""
        return self._watermark

    async def _refresh_watermark(self) -> None:
        """The group's durable position, lowered to below its oldest unfinished delivery (those run again)."""
        runner = self.daemon.runners.get(GROUP)
        if runner is not None:
            self._watermark = await self._compute_watermark(runner.ledger.position)

    async def _compute_watermark(self, position: int) -> int:
        assert self.daemon.store is not None
        rows = await asyncio.to_thread(self.daemon.store.load_rows, GROUP, ("pending", "running", "retry"))
        return min([position, *(r.event_id - 1 for r in rows)])

    async def _handle(self, event: Event) -> None:
        if event.id is not None and event.id in self._applied:
            return
        if self._recovering is not None:
            raise Retry("automation state is being reloaded after a failed write", after=1.0)
        while self._flusher_waiting and self._kick.is_set() and time.monotonic() - self._taken_at > 0.02:
            # A burst hands the loop hundreds of ready handlers at once; the flusher's wake-up is queued
            # behind them. Stepping behind it lets the evaluations done so far commit (and their actions
            # start) while the rest of the burst is evaluated, instead of after all of it.
            await asyncio.sleep(0)
        self._evaluate(event)
        await self._commit()

    async def _handle_many(self, events: list[Event]) -> list[BaseException | None]:
        """A batch of the engine's, in log order: evaluated in slices of a few milliseconds, each slice
        handed to the flusher before the next is evaluated (so the first events of a burst commit, and their
        actions start, while the rest is evaluated); done when every slice is committed."""
        if self._recovering is not None:
            return [Retry("automation state is being reloaded after a failed write", after=1.0)] * len(events)
        outcomes: list[BaseException | None] = [None] * len(events)
        commits: list[asyncio.Future[None]] = []
        slice_start = time.monotonic()
        for index, event in enumerate(events):
            if event.id is not None and event.id in self._applied:
                continue
            try:
                self._evaluate(event)
            except Exception as exc:  # this event fails (and is retried); the others go on
                log.exception("evaluating event %s failed", event.id)
                outcomes[index] = exc
            if time.monotonic() - slice_start > 0.005:
                commits.append(self._commit_later())
                await asyncio.sleep(0)  # the flusher takes the slice
                if self._recovering is not None:  # a write failed: the state is being reloaded under us
                    await asyncio.gather(*commits, return_exceptions=True)
                    return [Retry("automation state is being reloaded after a failed write", after=1.0)] * len(events)
                slice_start = time.monotonic()
        commits.append(self._commit_later())
        done = await asyncio.gather(*commits, return_exceptions=True)
        failed = next((r for r in done if isinstance(r, BaseException)), None)
        if failed is not None:  # slices committed before it are recorded as applied: their redelivery is a no-op
            return [failed] * len(events)
        return outcomes

    def _evaluate(self, event: Event) -> None:
        now, low = self.clock.time(), self._low_water()
        firings = self.evaluator.on_event(event, now, low)
        self._firings.extend(firings)
        if event.id is not None:
            self._applied_pending.append(event.id)
            self._journal.append((event.id, now, low))
            self._recent[event.id] = event
            if len(self._recent) > 20_000:
                self._recent.popitem(last=False)
        else:  # not replayable from the log: its effect must be checkpointed
            self._checkpoint_due = True
        if event.received is not None:
            self._last_received = max(self._last_received, event.received.timestamp())
        self._last_eval = time.monotonic()

    def as_of(self) -> float:
        """The time proactive windows are judged at: now when the group has read the whole log, else the
        receive time of the newest evaluated event (a backlog must not make expected events look absent)."""
        runner = self.daemon.runners.get(GROUP)
        tail = self.daemon.tail
        now = self.clock.time()
        if runner is None or tail is None or runner.ledger.read_pos >= tail.last:
            return now
        return min(now, self._last_received) if self._last_received else now

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                now = self.as_of()
                version = self.evaluator.version
                fired = self.evaluator.sweep(now)
                if fired or self.evaluator.version != version:
                    self._firings.extend(fired)
                    self._journal.append((None, now, 0))
                prune_due = time.monotonic() - self._last_prune > 30
                if prune_due:
                    await self._refresh_watermark()
                if self._should_checkpoint():
                    self._checkpoint_due = True
                if self._firings or self._journal or self._checkpoint_due or prune_due:
                    await self._commit()
            except Retry:
                log.warning("automation state could not be written; the sweep will run again")

    # -- group commit ----------------------------------------------------------------------------

    async def _commit(self) -> None:
        await self._commit_later()

    def _commit_later(self) -> asyncio.Future[None]:
        """A future done when everything evaluated so far is durable (it rides on the next group commit)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._kick.set()
        return future

    def _should_checkpoint(self) -> bool:
        """Checkpoint when idle for a moment after ``checkpoint_interval``, or anyway after six intervals or a
        long journal (it bounds the replay at start). Writing every changed bucket takes a while on the state
        thread, so it is kept out of bursts."""
        if not self.evaluator.dirty and not self._journaled:
            return False
        since = time.monotonic() - self._last_checkpoint
        interval = self.settings.checkpoint_interval
        idle = time.monotonic() - self._last_eval > 0.5
        return (since >= interval and idle) or since >= 6 * interval or self._journaled >= 200_000

    def _busy(self) -> bool:
        """Events were evaluated a moment ago, or actions are waiting or running: a checkpoint's slices (on
        the event loop) and its write (which holds the database's one write lock and much of the GIL, ~0.5 s
        with ~90,000 changed buckets) wait for a quiet moment, unless the checkpoint is overdue."""
        return time.monotonic() - self._last_eval < QUIET or self.executor.busy() > 0

    def _behind(self) -> bool:
        """The log has events the group has not read yet (a burst was just appended)."""
        runner = self.daemon.runners.get(GROUP)
        tail = self.daemon.tail
        return runner is not None and tail is not None and runner.ledger.read_pos < tail.last

    def _checkpoint_overdue(self) -> bool:
        since = time.monotonic() - self._last_checkpoint
        return since >= 6 * self.settings.checkpoint_interval or self._journaled >= 200_000

    def _checkpoint_ready(self) -> bool:
        """Take the checkpoint being built: little is left to serialise, and the group is quiet or the
        checkpoint overdue."""
        build = self._build
        if build is None or not build.ready(self.evaluator):
            return False
        return not self._busy() or self._checkpoint_overdue()

    def _take(self, checkpoint: bool = False) -> StateBatch:
        """What was evaluated since the last take; with ``checkpoint``, also the state as of now (the build
        in progress finished, or the whole of it serialised now), and the journal it replaces is emptied."""
        upserts: Collection[tuple[StateKey, str]] = ()
        deletes: tuple[StateKey, ...] = ()
        journal, self._journal = tuple(self._journal), []
        if checkpoint:  # the batch's journal steps are committed too: they are replayed until the flip
            build, self._build = self._build or CheckpointBuilder.start(self.evaluator), None
            self._checkpoint_due = False
            self._writing = True
            upserts, deletes = build.finish(self.evaluator)
        firings, self._firings = tuple(self._firings), []
        applied, self._applied_pending = tuple(self._applied_pending), []
        prune = None
        if time.monotonic() - self._last_prune > 30 and self._watermark > 0:
            self._last_prune = time.monotonic()
            prune = self._low_water()
            self._applied = {i for i in self._applied if i > prune}
        return StateBatch(upserts, deletes, firings, applied, prune, journal, checkpoint)

    async def _flusher(self) -> None:
        """Takes what was evaluated since the last take and commits it on the state thread. Commits are
        pipelined: the next batch is taken while the previous one is being written (the state thread runs
        them in order), so evaluation of a burst goes on while its first events commit and their actions
        start. A due checkpoint is built in slices of a few milliseconds when nothing is waiting to commit
        or being written and the group is quiet (evaluations and their commits go on between slices, and a
        burst pauses the build: see ``_busy``), and taken whole, with nothing in flight, once little is left
        to serialise."""
        assert self.state is not None
        loop = asyncio.get_running_loop()
        inflight: set[asyncio.Future[tuple[list[str], CheckpointWrite | None]]] = set()
        while True:
            if self._build is not None and not self._kick.is_set() and self._recovering is None:
                if inflight:  # no slice while a commit is written: the state thread would queue for the GIL
                    self._flusher_waiting = True
                    kicked: asyncio.Future[Any] = asyncio.ensure_future(self._kick.wait())
                    try:
                        await asyncio.wait({kicked, *inflight}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        kicked.cancel()
                    self._flusher_waiting = False
                    continue
                if self._busy() and not self._checkpoint_overdue():  # wait for a quiet moment, or a commit
                    self._flusher_waiting = True
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await self._kick.wait()
                    self._flusher_waiting = False
                    continue
                if not self._build.ready(self.evaluator):
                    self._build.step(self.evaluator, self._slice_seconds)
                    # Evaluations (and their commits) go first; and a short real sleep lets the loop block, which
                    # hands the GIL to other threads (a source appending a burst) between slices: sleep(0) kept
                    # it until the interpreter's 5 ms switch interval, slowing such an append about twofold.
                    await asyncio.sleep(self._slice_seconds / 4)
                    continue
                self._kick.set()  # take the checkpoint
            self._flusher_waiting = True
            await self._kick.wait()
            self._flusher_waiting = False
            if self._checkpoint_due and self._build is None and self._recovering is None and not self._writing:
                self._build = CheckpointBuilder.start(self.evaluator)
            final = self._checkpoint_ready()
            if final and inflight:
                await asyncio.wait(inflight)
                final = self._checkpoint_ready()  # evaluations meanwhile
            elif len(inflight) >= 2:
                await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            if self._recovering is not None:
                await self._recovering
                continue
            self._kick.clear()
            waiters, self._waiters = self._waiters, []
            batch = self._take(final)
            if not waiters and batch == StateBatch():
                continue  # woken to build or take a checkpoint that is not ready yet: nothing to write
            self._taken_at = time.monotonic()
            future = loop.run_in_executor(self._db, self._write, batch)
            inflight.add(future)
            future.add_done_callback(inflight.discard)
            future.add_done_callback(lambda f, b=batch, w=waiters: self._committed(f, b, w))  # type: ignore[misc]

    def _write(self, batch: StateBatch) -> tuple[list[str], CheckpointWrite | None]:
        """On the state thread: the batch (a checkpoint batch: and the start of its write). After a failed
        commit, later queued batches are refused until the service has reloaded its state: their evaluations
        saw the failed batch's effects, which are not durable."""
        assert self.state is not None
        if self._broken:
            raise Retry("an earlier automation state write failed; this one waits for the reload", after=1.0)
        try:
            if batch.checkpoint:
                return self.state.start_checkpoint(batch)
            return self.state.commit(batch), None
        except Exception:
            self._broken = True
            raise

    def _write_step(self, write: CheckpointWrite) -> bool:
        """On the state thread: the next short transaction of a checkpoint write."""
        if self._broken:
            raise Retry("an earlier automation state write failed; the checkpoint is given up", after=1.0)
        try:
            return write.step()
        except Exception:
            self._broken = True
            raise

    async def _write_checkpoint(self, write: CheckpointWrite, covered: int) -> None:
        """Write a taken checkpoint's entries a step at a time on the state thread. Only one step is queued
        there at a time, so a commit waits for one step at most, and each step is followed by a pause as long
        as itself; while the group is busy or behind the log (and the checkpoint not overdue) the write waits.
        ``covered``: the journaled steps it holds, no longer replayed once it is current."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                while (self._busy() or self._behind()) and not self._checkpoint_overdue() and not self._stopping:
                    await asyncio.sleep(QUIET / 4)
                flipped, started = write.flipped, time.monotonic()
                more = await loop.run_in_executor(self._db, self._write_step, write)
                if write.flipped and not flipped:
                    self._journaled = max(0, self._journaled - covered)
                    self._last_checkpoint = time.monotonic()
                if not more:
                    return
                if not self._stopping:
                    # leave the database's write lock free at least as long as the step held it: the log's
                    # appends and the groups' commits (other connections) wait for it with growing sleeps,
                    # and back-to-back steps would leave them only instants to take it
                    await asyncio.sleep(max(time.monotonic() - started, 0.005))
        except Exception as exc:  # given up: if it was not current yet, the previous one still is
            if not isinstance(exc, Retry):
                log.error("could not write the automation state checkpoint; reloading the state: %s", exc)
            if self._recovering is None:
                self._recovering = asyncio.ensure_future(self._recover())
        finally:
            self._writing = False
            self._writer = None
            self._kick.set()  # a checkpoint due meanwhile may be built now

    def _committed(
        self,
        future: asyncio.Future[tuple[list[str], CheckpointWrite | None]],
        batch: StateBatch,
        waiters: list[asyncio.Future[None]],
    ) -> None:
        exc = future.exception()
        if exc is not None:
            if batch.checkpoint:
                self._writing = False
            if not isinstance(exc, Retry):
                log.error("could not write automation state; reloading it from the store: %s", exc)
            if self._recovering is None:
                self._recovering = asyncio.ensure_future(self._recover())
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(Retry(f"automation state not written: {exc}", after=1.0))
            return
        new, write = future.result()
        self._applied.update(batch.applied)
        self._journaled += len(batch.journal)
        if write is not None:
            self._writer = asyncio.ensure_future(self._write_checkpoint(write, self._journaled))
        if new:  # dispatched now, from memory: an action starts without reading its firing back
            self.executor.submit(new, _records(batch.firings, new))
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _recover(self) -> None:
        # Every batch queued behind the failed one is refused (see _write); once the state thread has run
        # them, and a checkpoint write in progress is given up (the step it queued has run), reload the
        # durable state and accept writes again.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._db, lambda: None)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            await loop.run_in_executor(self._db, lambda: None)
        try:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:  # evaluated after the failed batch: not durable either
                if not waiter.done():
                    waiter.set_exception(Retry("automation state is being reloaded", after=1.0))
            await self._reset()
        finally:
            self._broken = False
            self._recovering = None
            self._kick.set()

    async def _final_checkpoint(self) -> None:
        """At a clean stop, leave no journal to replay (what was evaluated is committed with its event ids)."""
        assert self.state is not None
        if not hasattr(self, "evaluator"):
            return
        loop = asyncio.get_running_loop()
        self._stopping = True
        # a checkpoint write in progress (or whose batch is still queued) is finished first, without pauses
        await loop.run_in_executor(self._db, lambda: None)
        while self._writing:  # its batch has committed, so its write has started (or been given up)
            if self._writer is not None:
                await self._writer
            else:
                await asyncio.sleep(0.01)
        if self._broken or self._recovering is not None:  # the state in memory is not what was committed
            log.warning("automation state not checkpointed at stop; the journal will be replayed at start")
            return
        try:
            # on the state thread, behind the commits still queued there: written from another thread, the
            # checkpoint could land before them, and their journal rows after it
            await loop.run_in_executor(self._db, self._write_whole, self._take(True))
        except Exception:
            log.exception("could not write the automation state at stop; the journal will be replayed at start")
        finally:
            self._writing = False

    def _write_whole(self, batch: StateBatch) -> None:
        """On the state thread: a checkpoint batch and every step of its write, one after another."""
        _, write = self._write(batch)
        while write is not None and self._write_step(write):
            pass

    async def _reset(self) -> None:
        self._build = None  # built from state that is not durable; the restore starts a new one
        self._firings = []
        self._applied_pending = []
        self._journal = []
        await self._restore()

    async def _restore(self) -> None:
        """The durable state: the last checkpoint, then the journaled steps replayed in their order."""
        assert self.state is not None and self.daemon.store is not None
        evaluator = self.evaluator
        loaded = await asyncio.to_thread(self.state.load_state)
        steps = await asyncio.to_thread(self.state.journal)
        evaluator.state = loaded
        evaluator.dirty = set()
        evaluator.reload(evaluator.automations)
        ids = [e for e, _, _ in steps if e is not None]
        events: dict[int, Event] = {}
        for start in range(0, len(ids), 900):
            records = await asyncio.to_thread(self.daemon.store.get_records, ids[start : start + 900])
            events.update((r.id, r.event) for r in records)
        replayed = replay(evaluator, steps, events)
        if steps:
            log.info("automation state: checkpoint + %d journaled steps replayed", len(steps))
        self._firings.extend(replayed)  # recorded already (ids are derived), so nothing runs twice
        self._journaled = len(steps)
        self._checkpoint_due = True

    # -- definitions -----------------------------------------------------------------------------

    async def reload(self) -> None:
        previous = list(self.evaluator.automations)
        self.evaluator.reload(await asyncio.to_thread(self._load, previous))
        self.evaluator.start(self.clock.time())
        self._checkpoint_due = True  # dropped and opened state is not in the journal
        names = sorted(self.evaluator.by_name)
        log.info("automations reloaded: %d (%s)", len(names), ", ".join(names))
        await self._commit()

    async def _watch(self) -> None:
        folder = self.folder
        if folder is None:
            return
        from watchfiles import awatch

        folder.mkdir(parents=True, exist_ok=True)
        async for _changes in awatch(folder, stop_event=self.daemon.stop_event, debounce=200, step=50):
            try:
                await self.reload()
            except Exception:
                log.exception("reloading automations failed; keeping the previous ones")

    # -- what actions need from the daemon ---------------------------------------------------------

    async def _get_events(self, ids: Sequence[int]) -> list[Event]:
        assert self.daemon.store is not None
        found = {i: self._recent[i] for i in ids if i in self._recent}
        missing = [i for i in ids if i not in found]
        if missing:
            records = await asyncio.to_thread(self.daemon.store.get_records, missing)
            found.update((r.id, r.event) for r in records)
        return [found[i] for i in ids if i in found]

    async def _emit(self, events: Sequence[Event]) -> Sequence[int | None]:
        assert self.daemon.store is not None
        result = await asyncio.to_thread(self.daemon.store.append, list(events))
        self.daemon.notify_appended()
        return result.ids


def _records(firings: Sequence[Firing], new: Sequence[str]) -> dict[str, FiringRecord]:
    """The just-recorded firings as the executor reads them (pending, no outcomes yet)."""
    wanted = set(new)
    stamp = datetime.now(UTC).isoformat()
    out: dict[str, FiringRecord] = {}
    for f in firings:
        if f.id in wanted:
            out[f.id] = FiringRecord(
                f.id, f.automation, f.path, f.key, f.at, f.reason, f.events, f.window, f.triggering_event,
                "pending", [], stamp, stamp,
            )  # fmt: skip
    return out


async def automation_service(daemon: Daemon) -> None:
    """The daemon service (see ``Daemon._make_services``)."""
    service = AutomationService(daemon)
    daemon.automations = service
    await service.run()
