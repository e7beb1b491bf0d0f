"""The ShotGrid source in-process: the real shotgun-api3 client, the fake site, a real SQLite store."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.shotgrid_server import FakeShotgrid
from trackwire.config import Settings, ShotgridSettings
from trackwire.sources.shotgrid import ShotgridSource
from trackwire.store.sqlite import SqliteStore


@pytest.fixture
def fake() -> Iterator[FakeShotgrid]:
    server = FakeShotgrid().start()
    yield server
    server.responding.set()
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "tw.db")
    yield opened
    opened.close()


def settings(fake: FakeShotgrid, **extra: Any) -> ShotgridSettings:
    values = {"site": fake.url, "script_name": "trackwire", "script_key": "secret", "fetch_interval": 0.05}
    values.update(retry_base=0.05, retry_cap=0.2)
    values.update(extra)
    return Settings(shotgrid=values).shotgrid


class Running:
    """The source's run() as a task; ``until`` polls a condition on the loop with a deadline."""

    def __init__(self, source: ShotgridSource, store: SqliteStore) -> None:
        self.source = source
        self.store = store
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.source.run(self.store, self.stop, asyncio.Event()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

    async def until(self, condition: Any, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {condition}")
            await asyncio.sleep(0.02)


def ids(store: SqliteStore) -> list[int]:
    return [int(r.event.source_id) for r in store.read_after(0, 100_000)]


def test_the_first_run_starts_now_and_skips_history(fake: FakeShotgrid, store: SqliteStore) -> None:
    fake.add_events(30)

    async def scenario() -> None:
        source = ShotgridSource(settings(fake))
        async with Running(source, store) as running:
            await running.until(lambda: source.backlog is not None)
            fresh = fake.add_events(3)
            await running.until(lambda: ids(store) == fresh)

    asyncio.run(scenario())
    assert store.get_cursor("shotgrid")["last_id"] == 33


def test_a_first_run_while_shotgrid_is_down_waits_and_starts_once_it_is_up(
    fake: FakeShotgrid, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_events(5)
    fake.go_down()

    async def scenario() -> None:
        source = ShotgridSource(settings(fake))
        async with Running(source, store) as running:
            await running.until(lambda: "ShotGrid is unreachable" in caplog.text)
            await asyncio.sleep(0.5)  # several attempts fail meanwhile
            fake.come_up()
            await running.until(lambda: source.backlog is not None)
            fresh = fake.add_events(2)
            await running.until(lambda: ids(store) == fresh)

    with caplog.at_level(logging.INFO, "trackwire.source.shotgrid"):
        asyncio.run(scenario())
    assert caplog.text.count("ShotGrid is unreachable") == 1
    assert "ConnectionRefusedError" in caplog.text
    assert "reachable again" in caplog.text


def test_stop_is_honoured_at_once_even_while_a_call_hangs(fake: FakeShotgrid, store: SqliteStore) -> None:
    fake.add_events(5)

    async def scenario() -> float:
        source = ShotgridSource(settings(fake, start=1))
        running = Running(source, store)
        await running.__aenter__()
        await running.until(lambda: len(ids(store)) == 5)
        fake.responding.clear()  # the site accepts requests but never answers
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await running.__aexit__()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0


def test_gap_ids_are_looked_up_delivered_when_they_appear_and_expire_once(
    fake: FakeShotgrid, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_events(3)
    late, never = fake.skip_ids(2)
    after = fake.add_events(3)

    async def scenario() -> None:
        source = ShotgridSource(settings(fake, start=1, backlog_timeout=1.0))
        async with Running(source, store) as running:
            await running.until(lambda: set(after) <= set(ids(store)))
            assert sorted(source.backlog.missing) == [late, never]  # type: ignore[union-attr]
            fake.add_event(id=late, entity={"type": "Shot", "id": 1}, attribute_name="code")
            await running.until(lambda: late in ids(store))
            await running.until(lambda: not source.backlog.missing)  # type: ignore[union-attr]
            await asyncio.sleep(0.3)

    with caplog.at_level(logging.INFO, "trackwire.source.shotgrid"):
        asyncio.run(scenario())
    assert ids(store) == [1, 2, 3, *after, late]
    assert caplog.text.count("Timeout elapsed on backlog") == 1
    assert f"ids {never} (waited" in caplog.text
    assert store.get_cursor("shotgrid") == {"last_id": after[-1], "backlog": {}}


def test_the_cursor_keeps_awaited_ids_across_a_restart(fake: FakeShotgrid, store: SqliteStore) -> None:
    fake.add_events(2)
    (late,) = fake.skip_ids(1)
    fake.add_events(2)

    async def first_run() -> None:
        async with Running(ShotgridSource(settings(fake, start=1)), store) as running:
            await running.until(lambda: len(ids(store)) == 4)

    async def second_run() -> None:
        source = ShotgridSource(settings(fake, start=1))
        async with Running(source, store) as running:
            await running.until(lambda: source.backlog is not None and late in source.backlog.missing)
            fake.add_event(id=late, entity={"type": "Shot", "id": 2}, attribute_name="code")
            await running.until(lambda: late in ids(store))

    asyncio.run(first_run())
    assert store.get_cursor("shotgrid")["backlog"].keys() == {str(late)}
    asyncio.run(second_run())
    assert sorted(ids(store)) == [1, 2, 3, 4, 5]


def test_plugins_get_exactly_the_dicts_shotgun_api3_returns(fake: FakeShotgrid, store: SqliteStore) -> None:
    from shotgun_api3.shotgun import SG_TIMEZONE, Shotgun

    from trackwire.plugins.shotgunevents import sg_event_dict
    from trackwire.sources.shotgrid import EVENT_FIELDS

    fake.add_events(600, entities=7)  # more than one batch
    fake.add_event(
        "Shotgun_Shot_Change",
        entity={"type": "Shot", "id": 3, "name": "SH0003"},
        attribute_name="sg_due",
        meta={"type": "attribute_change", "old_value": "2024-01-01T00:00:00Z", "new_value": "2024-02-30T00:00:00Z"},
        session_uuid="5f0c-uuid",
    )

    async def scenario() -> None:
        async with Running(ShotgridSource(settings(fake, start=1)), store) as running:
            await running.until(lambda: len(ids(store)) == 601)

    asyncio.run(scenario())
    stock = Shotgun(fake.url, "trackwire", "secret", connect=False)
    try:
        expected = stock.find("EventLogEntry", [], EVENT_FIELDS, order=[{"field_name": "id", "direction": "asc"}])
    finally:
        stock.close()
    delivered = [sg_event_dict(record.event) for record in store.read_after(0, 1000)]
    assert delivered == expected
    assert all(d["created_at"].tzinfo is SG_TIMEZONE.local for d in delivered)
    assert delivered[-1]["meta"]["old_value"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert delivered[-1]["meta"]["new_value"] == "2024-02-30T00:00:00Z"  # not a date: a string, as api3 leaves it


class RefusingStore(SqliteStore):
    """Refuses the appends numbered in ``refuse`` (counting only those carrying events)."""

    def __init__(self, path: Path, refuse: set[int]) -> None:
        super().__init__(path)
        self.refuse = refuse
        self.batches = 0

    def append(self, events: Any, *, source: str | None = None, cursor: Any = None) -> Any:
        if events:
            self.batches += 1
            if self.batches in self.refuse:
                raise sqlite3.OperationalError("disk I/O error")
        return super().append(events, source=source, cursor=cursor)


def test_a_batch_the_store_refuses_is_read_again_never_skipped(
    fake: FakeShotgrid, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_events(3)
    gap = fake.skip_ids(2)  # awaited, then filled: the batch that brings them late is refused too
    fake.add_events(1200)
    store = RefusingStore(tmp_path / "refusing.db", refuse={1, 3, 5})

    async def scenario() -> None:
        source = ShotgridSource(settings(fake, start=1, batch_size=500))
        async with Running(source, store) as running:
            await running.until(lambda: source.backlog is not None and set(gap) <= set(source.backlog.missing))
            for missing in gap:
                fake.add_event(id=missing, entity={"type": "Shot", "id": 9}, attribute_name="code")
            await running.until(lambda: len(ids(store)) == 1205)

    try:
        asyncio.run(scenario())
        assert sorted(ids(store)) == list(range(1, 1206))
        assert store.get_cursor("shotgrid") == {"last_id": 1205, "backlog": {}}
        assert "the store could not take EventLogEntry ids" in caplog.text
        assert "disk I/O error" in caplog.text and "ShotGrid is unreachable" not in caplog.text
    finally:
        store.close()
