"""The Kitsu source against a real zou: events arrive once, with entity, project, user and statuses filled."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.integration.kitsu_server import KitsuServer, boot, unique
from trackwire.core.event import Event
from trackwire.sources.kitsu import KitsuCredentials, KitsuSource
from trackwire.store.memory import MemoryStore

pytestmark = [pytest.mark.needs_server, pytest.mark.timeout(900)]

gazu = pytest.importorskip("gazu")


@pytest.fixture(scope="session")
def kitsu() -> KitsuServer:
    return boot()


class Running:
    """A KitsuSource polling in a thread of its own, appending to an in-memory store."""

    def __init__(self, source: KitsuSource) -> None:
        self.source = source
        self.store = MemoryStore()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        async def main() -> None:
            self.stop = asyncio.Event()
            self.loop = asyncio.get_running_loop()
            await self.source.run(self.store, self.stop, asyncio.Event())

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc

    def events(self) -> list[Event]:
        return [r.event for r in self.store.read_after(0, 1_000_000)]

    def __enter__(self) -> Running:
        self.thread.start()
        wait_for(lambda: self.source.polls > 0, 60, what="the first poll")
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the source did not stop"
        assert self.error is None


def make_source(kitsu: KitsuServer, **kw: Any) -> KitsuSource:
    from pydantic import SecretStr

    credentials = KitsuCredentials(email=kitsu.email, password=SecretStr(kitsu.password))
    kw.setdefault("poll_interval", 0.2)
    return KitsuSource(kitsu.url, credentials, event_url=kitsu.event_url, **kw)


@pytest.fixture
def client(kitsu: KitsuServer) -> Iterator[Any]:
    client = kitsu.client()
    yield client
    client.session.close()


def test_a_status_change_made_with_gazu_arrives_once_with_task_statuses_and_ids(
    kitsu: KitsuServer, client: Any
) -> None:
    with Running(make_source(kitsu)) as running:
        project = gazu.project.new_project(unique("Source"), production_type="featurefilm", client=client)
        sequence = gazu.shot.new_sequence(project, "SQ01", client=client)
        shot = gazu.shot.new_shot(project, sequence, "SH010", client=client)
        task_type = gazu.task.get_task_type_by_name("Animation", client=client)
        task = gazu.task.new_task(shot, task_type, client=client)
        wip = gazu.task.get_task_status_by_short_name("wip", client=client)
        gazu.task.add_comment(task, wip, "starting", client=client)

        def changed() -> list[Event]:
            return [
                e
                for e in running.events()
                if e.type == "task:status-changed" and e.entity and e.entity.id == task["id"]
            ]

        found = wait_for(changed, 30, what="task:status-changed for the new task")
        assert isinstance(found, list) and len(found) == 1
        event = found[0]
        assert str(event.entity) == f"Task:{task['id']}"
        assert event.project is not None and event.project.id == project["id"]
        assert event.user is not None and event.user.type == "Person"
        assert event.attribute == "task_status_id"
        assert event.new == wip["id"] and event.old == task["task_status_id"]
        assert event.source_id == event.data["id"] and event.data["name"] == "task:status-changed"
        types = {e.type for e in running.events() if e.project and e.project.id == project["id"]}
        assert {"sequence:new", "shot:new", "task:new", "comment:new", "task:update"} <= types
        ids = [e.source_id for e in running.events()]
        assert len(ids) == len(set(ids))


def test_a_new_source_starts_from_now_and_a_restarted_one_from_its_cursor(kitsu: KitsuServer, client: Any) -> None:
    project = gazu.project.new_project(unique("Cursor"), production_type="featurefilm", client=client)
    source = make_source(kitsu, name="kitsu-cursor")
    running = Running(source)
    with running:
        pass
    assert not [e for e in running.events() if e.project and e.project.id == project["id"]]
    cursor = running.store.get_cursor("kitsu-cursor")
    assert cursor["high_water"] is not None
    gazu.shot.new_sequence(project, "SQ99", client=client)  # made while the source is stopped
    again = Running(make_source(kitsu, name="kitsu-cursor"))
    again.store = running.store
    with again:
        wait_for(
            lambda: [
                e for e in again.events() if e.type == "sequence:new" and e.project and e.project.id == project["id"]
            ],
            30,
            what="the event made while stopped",
        )


def test_an_unreachable_kitsu_is_retried_and_the_source_still_stops_promptly() -> None:
    from pydantic import SecretStr

    from trackwire.core.backoff import Backoff

    source = KitsuSource(
        "http://127.0.0.1:9",
        KitsuCredentials(email="a@b.c", password=SecretStr("s3cret-pw")),
        backoff=Backoff(base=0.05, cap=0.2),
    )
    running = Running(source)
    running.thread.start()
    wait_for(lambda: source.last_error is not None, 10, what="a failed poll")
    assert "s3cret-pw" not in (source.last_error or "")
    running.__exit__()
