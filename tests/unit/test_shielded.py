"""A clean-up run with finish_despite_cancellation ends whatever cancels arrive, then passes one on."""

from __future__ import annotations

import asyncio

import pytest

from trackwire.runtime.shielded import finish_despite_cancellation


async def _stop_twice_during(work_started: asyncio.Event, finished: list[str], release: asyncio.Event) -> None:
    work_started.set()
    await release.wait()
    finished.append("clean-up done")


def test_two_cancels_during_the_clean_up_do_not_cut_it_and_the_cancel_is_passed_on() -> None:
    async def main() -> None:
        started, release = asyncio.Event(), asyncio.Event()
        finished: list[str] = []

        async def service() -> None:
            await finish_despite_cancellation(_stop_twice_during(started, finished, release))

        task = asyncio.create_task(service())
        await started.wait()
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done(), "the clean-up is still running, so the task must be too"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == ["clean-up done"]

    asyncio.run(main())


def test_without_a_cancel_it_returns_normally_and_the_work_error_wins_over_a_cancel() -> None:
    async def failing(started: asyncio.Event, release: asyncio.Event) -> None:
        started.set()
        await release.wait()
        raise RuntimeError("the clean-up failed")

    async def main() -> None:
        done: list[str] = []
        release = asyncio.Event()
        release.set()
        await finish_despite_cancellation(_stop_twice_during(asyncio.Event(), done, release))
        assert done == ["clean-up done"]

        started, release = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(finish_despite_cancellation(failing(started, release)))
        await started.wait()
        task.cancel()
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(RuntimeError, match="the clean-up failed"):
            await task

    asyncio.run(main())
