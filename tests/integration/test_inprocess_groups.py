"""In-process consumer groups (the hook automations and workflows use) get the engine's guarantees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from trackwire.config import load_settings
from trackwire.core.event import Event, Ref
from trackwire.core.matching import Filter
from trackwire.errors import Retry
from trackwire.runtime.daemon import Daemon
from trackwire.runtime.inprocess import InProcessConsumer
from trackwire.store.sqlite import SqliteStore


@asynccontextmanager
async def running_group(
    tmp_path: Path, group: str, consumer: InProcessConsumer, **overrides: object
) -> AsyncIterator[tuple[Daemon, SqliteStore]]:
    """A daemon on SQLite with one in-process group of one consumer, registered; stopped on the way out."""
    settings = load_settings(
        None,
        overrides={"store.url": f"sqlite:///{tmp_path / 'tw.db'}", "web.enabled": False, "log.file": "", **overrides},
    )
    store = SqliteStore(tmp_path / "tw.db")
    daemon = Daemon(settings, store=store)
    registered = asyncio.Event()

    async def service(d: Daemon) -> None:
        await d.add_consumer_group(group, [consumer])
        registered.set()

    daemon.services.append(service)
    runner = asyncio.create_task(daemon.run(install_signals=False))
    await asyncio.wait_for(registered.wait(), 30)
    try:
        yield daemon, store
    finally:
        daemon.request_stop()
        await asyncio.wait_for(runner, 20)


async def wait_until(condition: Callable[[], bool], step: float = 0.02, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(step)


def test_an_in_process_group_sees_matching_events_in_order_and_retries(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    attempts: dict[int, int] = {}

    async def handler(event: Event) -> None:
        assert event.id is not None
        attempts[event.id] = attempts.get(event.id, 0) + 1
        if event.data.get("flaky") and attempts[event.id] < 3:
            raise Retry("not yet", after=0.01)
        seen.append((str(event.entity), event.id))

    async def scenario() -> None:
        consumer = InProcessConsumer("recorder.all", Filter(types=("Shotgun_*",)), handler)
        async with running_group(tmp_path, "recorder", consumer) as (daemon, store):
            events = [
                Event(
                    source="t",
                    source_id=str(i),
                    type="Shotgun_Shot_Change",
                    entity=Ref("Shot", i % 3),
                    data={"flaky": i == 4},
                )
                for i in range(12)
            ] + [Event(source="t", source_id="other", type="Other")]
            store.append(events)
            daemon.notify_appended()
            await wait_until(lambda: len(seen) >= 12)

    asyncio.run(scenario())
    assert sorted(i for _, i in seen) == list(range(1, 13))
    for entity in {e for e, _ in seen}:
        ids = [i for e, i in seen if e == entity]
        assert ids == sorted(ids), f"{entity} out of order: {ids}"
    assert attempts[5] == 3


def test_a_key_stuck_in_retry_with_thousands_of_events_behind_it_never_stops_the_other_keys(tmp_path: Path) -> None:
    """The group reads ahead only a window of runnable work; items held up behind a retrying key do not
    count against it, so later events of other keys are still read and delivered."""
    seen: list[int] = []

    async def handler(event: Event) -> None:
        assert event.id is not None and event.entity is not None
        if event.entity.id == 1:
            raise Retry("the farm is down for this shot", after=60.0)
        seen.append(event.id)

    async def scenario() -> None:
        consumer = InProcessConsumer("stuck.all", Filter(types=("Shotgun_*",)), handler)
        # engine.batch_size 100: a read-ahead window of 400 runnable items
        async with running_group(tmp_path, "stuck", consumer, **{"engine.batch_size": 100}) as (daemon, store):
            blocked = [
                Event(source="t", source_id=f"b{i}", type="Shotgun_Shot_Change", entity=Ref("Shot", 1))
                for i in range(3000)
            ]
            store.append(blocked)
            daemon.notify_appended()
            await asyncio.sleep(0.5)
            store.append(
                [
                    Event(source="t", source_id=f"f{i}", type="Shotgun_Shot_Change", entity=Ref("Shot", 2))
                    for i in range(50)
                ]
            )
            daemon.notify_appended()
            await wait_until(lambda: len(seen) >= 50, step=0.05)

    asyncio.run(scenario())
    assert seen == list(range(3001, 3051)), f"Shot 2's events were held back behind Shot 1 ({len(seen)} of 50 seen)"


def test_a_batch_handler_sees_events_in_log_order_and_a_failed_event_holds_back_only_its_own_key(
    tmp_path: Path,
) -> None:
    calls: list[list[int]] = []
    handled: list[tuple[str, int]] = []
    attempts: dict[int, int] = {}

    async def one(event: Event) -> None:
        raise AssertionError("a group with a batch handler is handed batches")

    def shot1() -> list[int]:
        return [i for shot, i in handled if shot == "Shot:1"]

    def settled() -> bool:  # every event handled, and shot 1's last three after 5's successful attempt
        seen = shot1()
        return len({i for _, i in handled}) == 12 and attempts.get(5) == 3 and seen[-3:] == [5, 8, 11]

    async def many(events: list[Event]) -> list[BaseException | None]:
        calls.append([e.id or 0 for e in events])
        outcomes: list[BaseException | None] = []
        for event in events:
            assert event.id is not None
            attempts[event.id] = attempts.get(event.id, 0) + 1
            if event.data.get("flaky") and attempts[event.id] < 3:
                outcomes.append(Retry("not yet", after=0.01))
                continue
            handled.append((str(event.entity), event.id))
            outcomes.append(None)
        return outcomes

    async def scenario() -> None:
        consumer = InProcessConsumer("recorder.all", Filter(types=("Shotgun_*",)), one, batch=many)
        async with running_group(tmp_path, "recorder", consumer) as (daemon, store):
            store.append(
                [
                    Event(
                        source="t",
                        source_id=str(i),
                        type="Shotgun_Shot_Change",
                        entity=Ref("Shot", i % 3),
                        data={"flaky": i == 4},
                    )
                    for i in range(12)
                ]
            )
            daemon.notify_appended()
            await wait_until(settled)

    asyncio.run(scenario())
    assert all(call == sorted(call) for call in calls)
    assert len(calls) < 12  # batches, not one call per event
    # event 5 (shot 1) failed twice: shot 1's later events, handled in the same batches, were reported as not
    # run and handed over again after 5, until 5 succeeded; the other shots were never held back
    assert settled(), handled
    assert attempts[5] == 3 and attempts[8] >= 2 and attempts[11] >= 2
    assert shot1()[-3:] == [5, 8, 11] and shot1().count(5) == 1
    others = [i for shot, i in handled if shot != "Shot:1"]
    assert sorted(others) == [1, 3, 4, 6, 7, 9, 10, 12]  # the other shots: once each, never held back
