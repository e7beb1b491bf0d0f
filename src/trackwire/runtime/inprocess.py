"""Consumers that run inside the daemon's event loop: automations and workflow bookkeeping.

They are ordering groups like plugin groups (same ledger, same durable progress, same retries and
dead letters) but their handlers are trusted Trackwire code, so they skip the worker process. A
handler is an ``async`` function of the event; it steers its delivery with the same outcomes
(``Retry``, ``Fail``, ``Skip``) as plugin callbacks.

A group of one consumer that also has a ``batch`` handler gets each batch the engine hands over in one call
(one task, one timeout, one report), its events in log order; it returns one outcome per event (``None``
for done, or the exception to treat as that event's failure). After an event fails, the later events of
its ordering key in the batch are reported as not run, whatever the handler returned for them, so they are
delivered again after it: a batch handler must tolerate seeing an event again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from trackwire.core.event import Event, decode_event
from trackwire.core.matching import Matcher
from trackwire.errors import Skip
from trackwire.plugins.loader import LoadFailure
from trackwire.runtime.protocol import ConsumerInfo, Result, RunItem, failure_result

__all__ = ["InProcessConsumer", "InProcessWorker"]

Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[list[Event]], Awaitable[list[BaseException | None]]]


@dataclass(frozen=True)
class InProcessConsumer:
    name: str
    matcher: Matcher
    handler: Handler
    batch: BatchHandler | None = None  # many events in one call (see the module's docstring)


@dataclass
class InProcessWorker:
    """Runs a group's in-process handlers with the interface of a worker process."""

    group: str
    handlers: list[InProcessConsumer]
    on_results: Callable[[list[Result]], None]
    timeout: float = 60.0
    concurrency: int = 64

    rss: int = field(default=0, init=False)
    failures: list[LoadFailure] = field(default_factory=list, init=False)
    consumers: list[ConsumerInfo] = field(default_factory=list, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _stopping: bool = field(default=False, init=False)
    _limit: asyncio.Semaphore | None = field(default=None, init=False)

    async def start(self) -> None:
        self.consumers = [ConsumerInfo(h.name, self.group, h.matcher) for h in self.handlers]
        self._limit = asyncio.Semaphore(self.concurrency)

    @property
    def pid(self) -> int | None:
        return None

    @property
    def alive(self) -> bool:
        return not self._stopping

    def check(self) -> None:
        pass

    def submit(self, items: list[RunItem]) -> None:
        batch = self.handlers[0].batch if len(self.handlers) == 1 else None
        if batch is not None:
            task = asyncio.create_task(self._run_batch(batch, items), name=f"{self.group}:batch:{items[0][0]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        chains: dict[str, list[RunItem]] = {}
        for item in items:
            chains.setdefault(item[4], []).append(item)
        for chain in chains.values():
            task = asyncio.create_task(self._run_chain(chain), name=f"{self.group}:{chain[0][0]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        return None

    async def _run_chain(self, chain: list[RunItem]) -> None:
        assert self._limit is not None
        async with self._limit:
            results: list[Result] = []
            for index, item in enumerate(chain):
                result = await self._run_item(item)
                results.append(result)
                if result[1] != "ok":
                    results.extend((later[0], "notrun", -1, None, None, None, 0.0) for later in chain[index + 1 :])
                    break
            self.on_results(results)

    async def _run_batch(self, handler: BatchHandler, items: list[RunItem]) -> None:
        assert self._limit is not None
        async with self._limit:
            started = time.monotonic()
            ordered = sorted(items, key=lambda item: item[0])
            outcomes: list[BaseException | None] = [None] * len(ordered)
            stopped: set[str] = set()  # ordering keys with a failed event: their later events do not run
            events: list[Event] = []
            slots: list[int] = []
            for index, (event_id, body, _positions, _attempt, key) in enumerate(ordered):
                if key in stopped:
                    continue
                try:
                    events.append(decode_event(body, event_id))
                    slots.append(index)
                except Exception as exc:
                    outcomes[index] = exc
                    stopped.add(key)
            if events:
                try:
                    async with asyncio.timeout(self.timeout):
                        handled = await handler(events)
                    if len(handled) != len(events):
                        raise RuntimeError(f"a batch handler gave {len(handled)} outcomes for {len(events)} events")
                except TimeoutError:
                    handled = [TimeoutError(f"timed out after {self.timeout:g} s")] * len(events)
                except Exception as exc:
                    handled = [exc] * len(events)
                for index, outcome in zip(slots, handled, strict=True):
                    outcomes[index] = outcome
            self.on_results(self._batch_results(ordered, outcomes, started))

    @staticmethod
    def _batch_results(ordered: list[RunItem], outcomes: list[BaseException | None], started: float) -> list[Result]:
        results: list[Result] = []
        stopped: set[str] = set()
        elapsed = time.monotonic() - started
        for (event_id, _body, _positions, _attempt, key), outcome in zip(ordered, outcomes, strict=True):
            if key in stopped:
                results.append((event_id, "notrun", -1, None, None, None, 0.0))
            elif outcome is None or isinstance(outcome, Skip):
                results.append((event_id, "ok", -1, None, None, None, elapsed))
            elif isinstance(outcome, TimeoutError):
                stopped.add(key)
                results.append((event_id, "error", 0, str(outcome), None, None, elapsed))
            else:
                stopped.add(key)
                results.append(failure_result(event_id, 0, outcome, started))
        return results

    async def _run_item(self, item: RunItem) -> Result:
        event_id, body, positions, _attempt, _key = item
        started = time.monotonic()
        event = decode_event(body, event_id)
        for position in positions:
            try:
                async with asyncio.timeout(self.timeout):  # no extra task per event, unlike wait_for
                    await self.handlers[position].handler(event)
            except Skip:
                continue
            except TimeoutError:
                return (
                    event_id,
                    "error",
                    position,
                    f"timed out after {self.timeout:g} s",
                    None,
                    None,
                    time.monotonic() - started,
                )
            except Exception as exc:
                return failure_result(event_id, position, exc, started)
        return (event_id, "ok", -1, None, None, None, time.monotonic() - started)

    async def stop(self, grace: float) -> None:
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()

    async def kill(self) -> None:
        await self.stop(0.0)
