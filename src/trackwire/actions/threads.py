"""The threads plain (non-async) plugin functions run on, off the event loop.

``asyncio.to_thread`` costs, per call, a submission to asyncio's shared pool and one thread-to-loop wake-up
(a socket write and a GIL hand-off) when the call returns. A burst of 1,000 plugin actions paid that 1,000
times, and a hung function held one of the few threads the rest of the daemon also uses for the store. Here
calls go through a queue to threads of their own, and calls that finish while the loop is busy wake it once
for all of them.

A thread cannot be killed: a function still running at its action's timeout keeps its thread until it
returns. A new thread starts when a call finds every thread inside a function (up to ``limit``), so hung
functions do not starve the others before that; threads idle for ``idle_exit`` seconds end. One instance
serves one event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["FunctionThreads"]

T = TypeVar("T")

_Call = tuple[Callable[[], Any], asyncio.Future[Any]]


class FunctionThreads:
    def __init__(self, limit: int = 64, *, idle_exit: float = 30.0, name: str = "action-function") -> None:
        self.limit = limit
        self.idle_exit = idle_exit
        self.name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._busy = 0
        self._done: list[tuple[asyncio.Future[Any], bool, Any]] = []
        self._wake_pending = False
        self._closed = False

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on one of the threads (in a copy of the caller's context) and return its result."""
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("the function threads are shut down")
        future: asyncio.Future[T] = loop.create_future()
        context = contextvars.copy_context()
        self._calls.put((lambda: context.run(fn), future))
        with self._lock:
            # A thread starts only when every thread is inside a function: calls that find one waiting on
            # the queue leave it to that one (fast functions in a burst then run on a few threads, and the
            # loop does not wait for a thread start per call). A call that comes while a thread is between
            # the queue and its count waits for the next free thread or the next call's new one.
            start = self._busy >= self._threads and self._threads < self.limit
            if start:
                self._threads += 1
        if start:
            threading.Thread(target=self._work, name=f"{self.name}-{self._threads}", daemon=True).start()
        return await future

    def shutdown(self) -> None:
        """Ask idle threads to end (a thread still in a function ends when it returns)."""
        self._closed = True
        with self._lock:
            threads = self._threads
        for _ in range(threads):
            self._calls.put(None)

    def _work(self) -> None:
        while True:
            try:
                item = self._calls.get(timeout=self.idle_exit)
            except queue.Empty:
                with self._lock:
                    if not self._calls.empty():
                        continue  # a call came in while this thread was giving up: it counted on it
                    self._threads -= 1
                return
            if item is None:
                with self._lock:
                    self._threads -= 1
                return
            fn, future = item
            with self._lock:
                self._busy += 1
            try:
                result: tuple[asyncio.Future[Any], bool, Any] = (future, True, fn())
            except BaseException as exc:  # handed to the caller, like a thread pool does
                result = (future, False, exc)
            with self._lock:
                self._busy -= 1
                self._done.append(result)
                wake, self._wake_pending = not self._wake_pending, True
            if wake:
                try:
                    future.get_loop().call_soon_threadsafe(self._deliver)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    pass

    def _deliver(self) -> None:
        """On the loop: hand every finished call its result."""
        with self._lock:
            done, self._done = self._done, []
            self._wake_pending = False
        for future, ok, value in done:
            if future.done():  # the caller gave up (its timeout)
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
