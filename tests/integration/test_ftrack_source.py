"""The ftrack source with the real ftrack_api EventHub against a local fake of ftrack's socket.io endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.fakes.ftrack_server import FakeFtrackServer
from trackwire.config import FtrackSettings
from trackwire.sources.ftrack import GAP_TYPE, FtrackSource
from trackwire.store.memory import MemoryStore

pytest.importorskip("ftrack_api")

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ftrack"


@pytest.fixture
def server() -> Iterator[FakeFtrackServer]:
    with FakeFtrackServer() as fake:
        yield fake


def _settings(server: FakeFtrackServer) -> FtrackSettings:
    return FtrackSettings(server_url=server.url, api_user="events@locovfx.com", api_key="k")


def _types(store: MemoryStore) -> list[str]:
    return [record.event.type for record in store.read_after(0, 1000)]


async def _running(source: FtrackSource, store: MemoryStore, body: Any) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(store, stop, asyncio.Event()))
    try:
        await body()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def _until(condition: Any, what: str, timeout: float = 20.0) -> None:
    await asyncio.to_thread(wait_for, condition, timeout, 0.02, what)


def test_hub_events_are_stored_once_per_entity_and_redelivery_is_deduplicated(server: FakeFtrackServer) -> None:
    store = MemoryStore()
    source = FtrackSource(_settings(server))
    raw = json.loads((FIXTURES / "update_status.json").read_text())

    async def body() -> None:
        await _until(lambda: server.subscriptions and server.client_count, "the hub to subscribe")
        server.emit(raw)
        server.emit(raw)  # ftrack may deliver twice: the id dedupes it
        server.emit({**raw, "id": "other", "topic": "ftrack.action.discover"})  # not subscribed by default
        await _until(lambda: len(store.read_after(0, 100)) >= 2, "two entity events")

    asyncio.run(_running(source, store, body))
    subscriptions = [s["subscription"] for s in server.subscriptions]
    assert "topic=ftrack.update" in subscriptions
    records = store.read_after(0, 100)
    assert [r.event.source_id for r in records] == [raw["id"], raw["id"] + "#1"]
    assert records[0].event.data["ftrack"]["data"]["entities"] == raw["data"]["entities"]


def test_after_an_outage_the_source_reconnects_and_records_the_gap(server: FakeFtrackServer) -> None:
    store = MemoryStore()
    source = FtrackSource(_settings(server))
    raw = json.loads((FIXTURES / "update_status.json").read_text())

    async def body() -> None:
        await _until(lambda: server.client_count, "the first connection")
        server.drop_clients()
        await _until(lambda: server.connections >= 2 and server.client_count, "a reconnection")
        await _until(lambda: GAP_TYPE in _types(store), "the gap event")
        server.emit(raw)
        await _until(lambda: "ftrack.update" in _types(store), "events after the outage")

    asyncio.run(_running(source, store, body))
    gap = next(r.event for r in store.read_after(0, 100) if r.event.type == GAP_TYPE)
    assert gap.data["reason"] == "disconnected" and gap.data["since"] <= gap.data["until"]


def test_a_restart_records_the_downtime_as_a_gap(server: FakeFtrackServer) -> None:
    store = MemoryStore()
    raw = json.loads((FIXTURES / "update_status.json").read_text())

    async def first() -> None:
        await _until(lambda: server.client_count, "the first connection")
        server.emit(raw)
        await _until(lambda: store.read_after(0, 100), "an event")

    asyncio.run(_running(FtrackSource(_settings(server)), store, first))
    assert GAP_TYPE not in _types(store)

    async def second() -> None:
        await _until(lambda: GAP_TYPE in _types(store), "the downtime gap")

    asyncio.run(_running(FtrackSource(_settings(server)), store, second))
    assert _types(store).count(GAP_TYPE) == 1
