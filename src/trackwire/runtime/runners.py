"""Elastic callback threads for a worker process: one thread while callbacks are quick, more when they block.

A group's ``concurrency`` says how many of its keys may run at once. Running every chain on its own pool
thread pays a thread hand-off (and a results frame) per chain: for plugins that finish in microseconds this
costs more than the callbacks themselves (with 64 threads, ShotGrid catch-up of no-op plugins ran at 15,000
events/s; in one thread, at 21,700). Blocking callbacks (a 5 ms database call) need the threads.

``ElasticRunners`` starts each batch on one runner thread, which takes chains one after another. A scaler
looks every ``patience`` seconds: when chains are waiting and every running runner has been on its current
chain for longer than ``patience`` (blocked on I/O, or slow), it wakes as many more runners as are running,
so the count doubles until the waiting chains are covered or ``limit`` is reached. A runner whose chain was
quick goes idle again while no other runner is stuck, so a blocking spell does not leave many threads
contending for quick work. Runners that find nothing to do go idle; the last one to go idle flushes the
results. Which chain runs on which thread never changes
what runs in order: a chain is one key's items, run in order by one runner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class ElasticRunners(Generic[T]):
    def __init__(
        self,
        run: Callable[[T], None],
        flush: Callable[[], None],
        limit: int,
        *,
        patience: float = 0.002,
        flush_every: float = 0.005,
        name: str = "callback",
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._run = run
        self._flush = flush
        self.limit = limit
        self.patience = patience
        self.flush_every = flush_every
        self._name = name
        self._cond = threading.Condition()
        self._pending: deque[T] = deque()
        self._running = 0  # runners taking work (woken, or about to be)
        self._tokens = 0  # wake-ups handed to idle runners, not yet taken
        self._idle = 0  # runner threads waiting for a token
        self._threads: list[threading.Thread] = []
        self._busy_since: dict[int, float] = {}  # runner thread -> when it took its current chain
        self._stopping = False
        self._work_waiting = threading.Event()  # the scaler's cue: chains are pending
        self._last_flush = time.monotonic()
        self.peak = 0  # most runners at work at once (tests read it)
        self._scaler = threading.Thread(target=self._scale, name=f"{name}-scaler", daemon=True)
        self._scaler.start()

    # -- the feeding side ------------------------------------------------------------------------

    def submit(self, chains: Iterable[T]) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("the runners are stopping")
            self._pending.extend(chains)
            if self._pending:
                if self._running == 0:
                    self._wake(1)
                self._work_waiting.set()

    def stop(self, timeout: float | None = None) -> None:
        """Run what is pending, then let every runner thread end."""
        with self._cond:
            self._stopping = True
            if self._pending and self._running == 0:
                self._wake(1)
            self._cond.notify_all()
        self._work_waiting.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        joined = 0
        while True:  # the scaler may start a thread while we wait: join until none is left
            with self._cond:
                if joined == len(self._threads):
                    return
                thread = self._threads[joined]
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return  # out of time
            joined += 1

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    # -- runners -----------------------------------------------------------------------------------

    def _wake(self, count: int) -> None:
        """Put ``count`` more runners to work (caller holds the lock)."""
        count = min(count, self.limit - self._running)
        for _ in range(count):
            self._running += 1
            if self._idle > self._tokens:
                self._tokens += 1
                self._cond.notify()
            else:
                thread = threading.Thread(target=self._runner, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self.peak = max(self.peak, self._running)

    def _runner(self) -> None:
        ident = threading.get_ident()
        while True:
            self._work(ident)
            with self._cond:
                self._idle += 1
                while self._tokens == 0 and not (self._stopping and not self._pending):
                    self._cond.wait()
                self._idle -= 1
                if self._tokens == 0:  # stopping, and nothing left to run
                    return
                self._tokens -= 1

    def _work(self, ident: int) -> None:
        cond = self._cond
        pending = self._pending
        busy = self._busy_since
        patience = self.patience
        quick = False
        while True:
            with cond:
                if not pending or (quick and self._running > 1 and not self._stuck(time.monotonic(), ident)):
                    # nothing to do, or this runner is one too many: its chain was quick and no other runner
                    # is stuck, so the others keep up (after a blocking spell, the count shrinks back to one)
                    busy.pop(ident, None)
                    self._running -= 1
                    last = self._running == 0
                    break
                chain = pending.popleft()
                if not pending:
                    self._work_waiting.clear()
                started = busy[ident] = time.monotonic()
            try:
                self._run(chain)
            except Exception:  # the run function reports its own failures; this keeps the runner alive
                log.exception("a callback chain raised past its reporting")
            finally:
                now = time.monotonic()
                quick = now - started < patience
                if now - self._last_flush >= self.flush_every:
                    self._last_flush = now
                    self._flush()
        if last:
            self._last_flush = time.monotonic()
            self._flush()

    def _stuck(self, now: float, besides: int | None = None) -> int:
        """Runners on their current chain for ``patience`` or longer (caller holds the lock)."""
        patience = self.patience
        return sum(1 for ident, since in self._busy_since.items() if ident != besides and now - since >= patience)

    def _scale(self) -> None:
        """Wake more runners while every running one is stuck and chains wait."""
        while True:
            if not self._work_waiting.wait(0.5):
                if self._stopping:
                    return
                continue
            time.sleep(self.patience)
            with self._cond:
                if self._stopping and not self._pending:
                    return
                if not self._pending or self._running >= self.limit:
                    continue
                stuck = self._stuck(time.monotonic())
                if stuck >= self._running:
                    self._wake(min(len(self._pending), max(1, self._running)))
