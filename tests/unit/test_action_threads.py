"""Plain plugin functions run on their own threads: results and errors come back, a hung function does not
hold up the next call, and a burst of quick calls needs few threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from trackwire.actions.threads import FunctionThreads


def test_calls_return_their_results_and_raise_their_errors_on_the_caller() -> None:
    threads = FunctionThreads(limit=4)

    def boom() -> None:
        raise ValueError("no")

    async def main() -> list[int]:
        results = await asyncio.gather(*(threads.call(lambda i=i: i * i) for i in range(200)))  # type: ignore[misc]
        with pytest.raises(ValueError, match="no"):
            await threads.call(boom)
        return list(results)

    try:
        assert asyncio.run(main()) == [i * i for i in range(200)]
    finally:
        threads.shutdown()


def test_a_function_that_hangs_does_not_hold_up_the_next_call() -> None:
    threads = FunctionThreads(limit=4)
    started, release = threading.Event(), threading.Event()

    def hang() -> None:
        started.set()
        release.wait(30)

    async def main() -> str:
        hung = asyncio.ensure_future(threads.call(hang))
        assert await asyncio.to_thread(started.wait, 10)
        quick = await asyncio.wait_for(threads.call(lambda: "quick"), 10)
        assert not hung.done()
        release.set()
        await hung
        return quick

    try:
        assert asyncio.run(main()) == "quick"
    finally:
        release.set()
        threads.shutdown()


def test_a_fast_burst_needs_few_threads() -> None:
    threads = FunctionThreads(limit=64)
    names: set[str] = set()

    async def main() -> None:
        await asyncio.gather(*(threads.call(lambda: names.add(threading.current_thread().name)) for _ in range(500)))

    try:
        asyncio.run(main())
    finally:
        threads.shutdown()
    assert 1 <= len(names) < 64
