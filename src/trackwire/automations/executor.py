"""Runs the actions of recorded firings: in order, each with a timeout and retries, each outcome recorded.

A firing is recorded (``pending``) before any of its actions start; after a crash the pending firings are
resumed and actions already recorded as finished are not run again. Every attempt of one action uses the
same idempotency key (``<firing id>:<action index>``), so receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trackwire.actions import ActionContext, ActionError, run_action
from trackwire.actions.base import Emit
from trackwire.actions.threads import FunctionThreads
from trackwire.automations.state import AutomationState, FiringRecord
from trackwire.config import AutomationSettings
from trackwire.core.event import Event
from trackwire.core.triggers import Automation, event_depth

__all__ = ["ActionExecutor"]

log = logging.getLogger("trackwire.automations.actions")

GetEvents = Callable[[Sequence[int]], Awaitable[list[Event]]]


def _stamp() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class ActionExecutor:
    automations: Callable[[], Mapping[str, Automation]]
    state: AutomationState
    settings: AutomationSettings
    get_events: GetEvents
    emit: Emit | None = None
    on_start: Callable[[FiringRecord, int], None] | None = None

    _queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _active: set[str] = field(default_factory=set, init=False)
    db: Executor | None = None  # the thread that writes automation state (None: asyncio's default pool)

    _known: dict[str, FiringRecord] = field(default_factory=dict, init=False)
    _writes: list[tuple[str, str, list[dict[str, Any]], asyncio.Future[None]]] = field(default_factory=list, init=False)
    _writer: asyncio.Task[None] | None = field(default=None, init=False)
    _functions: dict[str, Any] = field(default_factory=dict, init=False)
    _threads: FunctionThreads = field(init=False)

    def __post_init__(self) -> None:
        # Hung plain functions keep their threads (Python cannot kill a thread): leave room beyond the
        # concurrency limit before calls have to queue behind them.
        self._threads = FunctionThreads(limit=max(8, 4 * self.settings.action_concurrency))

    def submit(self, firing_ids: Sequence[str], records: Mapping[str, FiringRecord] | None = None) -> None:
        """Run the actions of these firings; ``records``: the ones just recorded, so they need no read back."""
        if records:
            self._known.update(records)
        for firing_id in firing_ids:
            self._queue.put_nowait(firing_id)

    async def run(self, stop: asyncio.Event) -> None:
        pending = await asyncio.to_thread(self.state.pending_firings)
        if pending:
            log.info("resuming the actions of %d recorded firings", len(pending))
        self.submit([r.id for r in pending])
        limit = asyncio.Semaphore(self.settings.action_concurrency)
        try:
            while not stop.is_set():
                firing_id = await self._queue.get()
                if firing_id in self._active:
                    self._known.pop(firing_id, None)
                    continue
                await limit.acquire()
                self._active.add(firing_id)
                task = asyncio.create_task(self._guarded(firing_id, limit), name=f"actions:{firing_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            self._threads.shutdown()

    def busy(self) -> int:
        """Firings whose actions are waiting to start or running (or having their outcome written)."""
        return self._queue.qsize() + len(self._tasks)

    async def idle(self) -> bool:
        return self._queue.empty() and not self._tasks

    async def _guarded(self, firing_id: str, limit: asyncio.Semaphore) -> None:
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                limit.release()

        try:
            await self.execute(firing_id, release)
        except Exception:
            log.exception("actions of firing %s crashed; it stays pending", firing_id)
        finally:
            self._active.discard(firing_id)
            release()

    async def execute(self, firing_id: str, ran: Callable[[], None] | None = None) -> FiringRecord | None:
        """Run the firing's unfinished actions and record their outcomes. ``ran`` is called when the actions
        are done, before the final outcome is written: the concurrency limit bounds actions, not bookkeeping."""
        record = self._known.pop(firing_id, None)
        if record is None:
            record = await asyncio.to_thread(self.state.get_firing, firing_id)
        if record is None or record.status != "pending":
            return record
        automation = self.automations().get(record.automation)
        outcomes: list[dict[str, Any]] = list(record.outcomes)
        if automation is None:
            outcomes.append({"status": "failed", "error": "the automation is no longer defined", "finished": _stamp()})
            await self._set_outcomes(firing_id, "failed", outcomes)
            return replace(record, status="failed", outcomes=outcomes)
        events = await self.get_events(record.events)
        trigger = next((e for e in events if e.id == record.triggering_event), None)
        depth = max((event_depth(e) for e in events), default=0)
        for index, spec in enumerate(automation.actions):
            done = next((o for o in outcomes if o.get("action") == index), None)
            if done is not None and done.get("status") in ("succeeded", "failed"):
                continue
            ctx = ActionContext(
                automation=automation.name,
                firing=record.to_json(),
                events=tuple(events),
                event=trigger,
                idempotency_key=f"{record.id}:{index}",
                settings=self.settings,
                emit=self.emit,
                depth=depth,
                functions=self._functions,
                threads=self._threads,
            )
            if self.on_start is not None:
                self.on_start(record, index)
            outcome = await self._attempts(index, spec, ctx)
            outcomes = [o for o in outcomes if o.get("action") != index] + [outcome]
            if index < len(automation.actions) - 1:  # the last outcome is written with the final status
                await self._set_outcomes(firing_id, "pending", outcomes)
        status = "failed" if any(o.get("status") == "failed" for o in outcomes) else "succeeded"
        if ran is not None:
            ran()
        await self._set_outcomes(firing_id, status, outcomes)
        return replace(record, status=status, outcomes=outcomes)

    async def _set_outcomes(self, firing_id: str, status: str, outcomes: list[dict[str, Any]]) -> None:
        """Record outcomes durably. Writes queue up while one is in progress and then go in one transaction,
        so a burst of finished actions neither syncs once per action nor occupies a thread each."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append((firing_id, status, outcomes, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_outcomes(), name="automations:outcomes")
        await future

    async def _write_outcomes(self) -> None:
        loop = asyncio.get_running_loop()
        while self._writes:
            batch, self._writes = self._writes, []
            items = [(firing_id, status, outcomes) for firing_id, status, outcomes, _ in batch]
            try:
                await loop.run_in_executor(self.db, self.state.set_outcomes_many, items)
            except Exception as exc:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for *_, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _attempts(self, index: int, spec: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
        kind = str(spec["type"])
        params = {k: v for k, v in spec.items() if k not in ("type", "name", "timeout", "attempts")}
        timeout = float(spec.get("timeout") or self.settings.action_timeout)
        attempts = int(spec.get("attempts") or self.settings.action_attempts)
        outcome: dict[str, Any] = {
            "action": index,
            "type": kind,
            "name": spec.get("name") or kind,
            "idempotency_key": ctx.idempotency_key,
            "started": _stamp(),
        }
        errors: list[str] = []
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                async with asyncio.timeout(timeout):  # no extra task per attempt, unlike wait_for
                    detail = await run_action(kind, params, ctx, timeout)
            except ActionError as exc:
                errors.append(f"attempt {attempt}: {exc}")
                if not exc.retry:
                    break
            except TimeoutError:
                errors.append(f"attempt {attempt}: timed out after {timeout:g} s")
            except Exception as exc:
                errors.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
            else:
                outcome.update(status="succeeded", attempts=attempt, detail=detail, finished=_stamp())
                outcome["seconds"] = round(time.monotonic() - started, 4)
                if errors:
                    outcome["errors"] = errors
                return outcome
            if attempt < attempts:
                await asyncio.sleep(min(self.settings.action_backoff * 2 ** (attempt - 1), 60.0))
        log.warning("automation %s action %d (%s) failed: %s", ctx.automation, index, kind, errors[-1])
        outcome.update(status="failed", attempts=len(errors), error=errors[-1], errors=errors, finished=_stamp())
        return outcome
