"""ftrack event plugins run unchanged: register(session), expressions, priority, event.stop(), replies."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.fakes.ftrack_server import FakeFtrackServer
from trackwire.core.event import Event
from trackwire.plugins.api import Context
from trackwire.plugins.ftrack import REPLY_TYPE, _Replies, _Server, plugin_session
from trackwire.plugins.loader import LoadedConsumer, LoadedPlugin, load_plugin, run_order
from trackwire.sources.ftrack import events_from_ftrack

pytest.importorskip("ftrack_api")

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ftrack"
PLUGINS = FIXTURES / "plugins"


def _load(name: str, **options: Any) -> LoadedPlugin:
    loaded = load_plugin("ftrack", name, PLUGINS / f"{name}.py", options)
    assert isinstance(loaded, LoadedPlugin), str(loaded)
    return loaded


def _drive(plugin: LoadedPlugin, events: list[Event]) -> list[Event]:
    """What the engine does: each event, in log order, to each matching consumer in order; returns emitted events."""
    emitted: list[Event] = []
    for number, event in enumerate(events, start=1):
        event = event.with_id(number)
        for consumer in plugin.consumers:
            if consumer.matcher.matches(event):
                ctx = Context(plugin.name, consumer.name, logging.getLogger("t"), 1, {}, event, emitted.extend)
                consumer.invoke(event, ctx)
    return emitted


def _update(**source_user: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((FIXTURES / "update_status.json").read_text())
    raw["source"]["user"].update(source_user)
    return raw


def _seen(plugin: LoadedPlugin) -> list[Any]:
    import sys

    module = sys.modules[f"trackwire_plugin_{plugin.name}"]
    return list(module.SEEN)


def test_subscriptions_run_in_priority_order_once_per_ftrack_event() -> None:
    plugin = _load("add_version_to_list")
    assert [c.name.split(".", 1)[1].split("@")[0] for c in plugin.consumers] == [
        "gatekeeper",
        "audit",
        "on_version_status",
        "vetoed",
    ]
    raw = _update()
    _drive(plugin, events_from_ftrack(raw, "ftrack"))  # two entity events, one ftrack event
    assert _seen(plugin) == [
        ("audit", raw["id"], "ftrack.update"),
        ("review", "f0e1d2c3-3333-11ee-8b5e-0242ac120002", "jane.doe@locovfx.com"),
        ("vetoed", raw["id"]),
    ]


def test_event_stop_in_an_earlier_callback_skips_the_later_ones() -> None:
    plugin = _load("add_version_to_list")
    raw = _update(username="robot@locovfx.com")
    _drive(plugin, events_from_ftrack(raw, "ftrack"))
    assert _seen(plugin) == []


def test_action_discover_and_the_form_round_trip_reply_as_ftrack_does() -> None:
    plugin = _load("batch_create_action", api_user="jane.doe@locovfx.com")
    user = {"id": "u1", "username": "jane.doe@locovfx.com"}
    selection = [{"entityId": "6c3a2e1e", "entityType": "show"}]
    discover = {
        "id": "d1",
        "topic": "ftrack.action.discover",
        "source": {"id": "web1", "user": user},
        "data": {"selection": selection},
    }
    launch: dict[str, Any] = {  # an ftrack event as JSON
        "id": "l1",
        "topic": "ftrack.action.launch",
        "source": {"id": "web1", "user": user},
        "data": {"actionIdentifier": "loco.batch-create-shots", "selection": selection},
    }
    submit = {
        **launch,
        "id": "l2",
        "data": {**launch["data"], "values": {"pattern": "sh{:04d}", "first": "10", "last": "30"}},
    }
    other_user = {**discover, "id": "d2", "source": {"id": "web2", "user": {"username": "john@locovfx.com"}}}
    events = [e for raw in (discover, launch, submit, other_user) for e in events_from_ftrack(raw, "ftrack")]
    replies = _drive(plugin, events)
    assert [r.type for r in replies] == [REPLY_TYPE] * 3
    assert [r.data["in_reply_to_event"] for r in replies] == ["d1", "l1", "l2"]
    assert replies[0].data["data"]["items"][0]["actionIdentifier"] == "loco.batch-create-shots"
    assert [i["name"] for i in replies[1].data["data"]["items"]] == ["pattern", "first", "last"]
    assert replies[2].data["data"] == {"success": True, "message": "created sh0010, sh0020, sh0030"}


def test_a_plugin_that_is_not_given_a_session_subscribes_nothing_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def nothing():\n    pass\n")
    failure = load_plugin("ftrack", "broken", path, {})
    assert not isinstance(failure, LoadedPlugin)
    assert "register" in failure.message


@pytest.fixture
def server() -> Iterator[FakeFtrackServer]:
    with FakeFtrackServer() as fake:
        yield fake


def test_replies_are_published_to_the_ftrack_server_targeted_at_the_asking_client(server: FakeFtrackServer) -> None:
    import ftrack_api.event.base

    replies = _Replies(_Server(server.url, "events@locovfx.com", "key"))
    asked = ftrack_api.event.base.Event("ftrack.action.discover", id="d1", source={"id": "web1"}, data={})
    replies.publish(asked, {"items": []}, {"id": "sub-1"})
    found = wait_for(lambda: [e for e in server.published if e["topic"] == "ftrack.meta.reply"], 10, what="a reply")
    assert isinstance(found, list)
    reply = found[0]
    assert reply["target"] == "id=web1"
    assert reply["inReplyToEvent"] == "d1"
    assert reply["data"] == {"items": []} and reply["source"]["id"] == "sub-1"
    replies._hub.disconnect()


def test_the_studio_hosted_actions_are_served_in_ftracks_action_menu_with_their_form() -> None:
    path = Path(__file__).parents[2] / "examples" / "actions" / "ftrack_actions_plugin.py"
    loaded = load_plugin("ftrack", "studio_actions_ftrack", path, {})
    assert isinstance(loaded, LoadedPlugin), str(loaded)
    user = {"id": "u1", "username": "jane.doe@locovfx.com"}
    selection = [{"entityId": "seq-88", "entityType": "sequence"}]
    discover = {
        "id": "d9",
        "topic": "ftrack.action.discover",
        "source": {"id": "w", "user": user},
        "data": {"selection": selection},
    }
    launch: dict[str, Any] = {  # an ftrack event as JSON
        "id": "l9",
        "topic": "ftrack.action.launch",
        "source": {"id": "w", "user": user},
        "data": {"actionIdentifier": "loco.batch-create-shots", "selection": selection},
    }
    values = {"pattern": "SQ88_{:04d}", "first": 10, "last": 20, "step": 10}
    submit = {**launch, "id": "l10", "data": {**launch["data"], "values": values}}
    events = [e for raw in (discover, launch, submit) for e in events_from_ftrack(raw, "ftrack")]
    replies = [r.data["data"] for r in _drive(loaded, events)]
    assert [i["actionIdentifier"] for i in replies[0]["items"]] == ["loco.batch-create-shots", "loco.clear-job-queue"]
    assert [i["name"] for i in replies[1]["items"]] == ["pattern", "first", "last", "step"]
    assert replies[2] == {"success": True, "message": "would create 2 shots: SQ88_0010, SQ88_0020"}


# Two plugin files of one ftrack plugin path; the later file (by name) holds the lowest priority.
_STAMP = """
def make(calls, label, stop_for=None):
    def callback(event):
        calls.append((label, event["id"]))
        if stop_for and event["source"]["user"]["username"] == stop_for:
            event.stop()
    return callback
"""
_FIRST_FILE = """
from stamp import make

def register(session, calls, **kw):
    session.event_hub.subscribe("topic=ftrack.update", make(calls, "a:default"))
    session.event_hub.subscribe("topic=ftrack.update", make(calls, "a:late"), priority=300)
    session.event_hub.subscribe("topic=ftrack.update", make(calls, "a:50"), priority=50)
"""
_SECOND_FILE = """
from stamp import make

def register(session, calls, **kw):
    session.event_hub.subscribe("topic=ftrack.update", make(calls, "b:gate", "robot@locovfx.com"), priority=10)
    session.event_hub.subscribe("topic=ftrack.update", make(calls, "b:default"))
    session.event_hub.subscribe("topic=ftrack.update", make(calls, "b:200"), priority=200)
"""


def _group(tmp_path: Path, calls: list[Any]) -> list[LoadedConsumer]:
    """What a worker process does for the ``ftrack`` group: load every file, then order the whole group."""
    (tmp_path / "stamp.py").write_text(_STAMP)
    (tmp_path / "a_plugin.py").write_text(_FIRST_FILE)
    (tmp_path / "b_plugin.py").write_text(_SECOND_FILE)
    consumers: list[LoadedConsumer] = []
    for name in ("a_plugin", "b_plugin"):
        loaded = load_plugin("ftrack", name, tmp_path / f"{name}.py", {"calls": calls})
        assert isinstance(loaded, LoadedPlugin), str(loaded)
        consumers.extend(loaded.consumers)
    return [consumers[i] for i in run_order(consumers)]


def _ftrack_hub_order(tmp_path: Path, raw: dict[str, Any]) -> list[Any]:
    """The oracle: the same two files registered on one real ftrack_api hub, which dispatches the event itself."""
    import ftrack_api.event.base

    from trackwire.plugins.loader import import_plugin

    calls: list[Any] = []
    session = plugin_session(_Server(None, None, None, offline=True))
    for name in ("a_plugin", "b_plugin"):
        import_plugin(f"oracle_{name}", tmp_path / f"{name}.py").register(session, calls=calls)
    fields = {k: raw[k] for k in ("id", "data", "source", "target") if k in raw}
    session.event_hub._handle(ftrack_api.event.base.Event(raw["topic"], **fields), synchronous=True)
    return calls


def test_callbacks_of_different_plugin_files_run_in_ftracks_global_priority_order(tmp_path: Path) -> None:
    calls: list[Any] = []
    group = _group(tmp_path, calls)
    raw = _update()
    _drive(LoadedPlugin("ftrack", tmp_path, group), events_from_ftrack(raw, "ftrack"))
    expected = ["b:gate", "a:50", "a:default", "b:default", "b:200", "a:late"]
    assert [label for label, _ in calls] == expected
    assert {event_id for _, event_id in calls} == {raw["id"]}  # once per ftrack event, not per entity
    assert [label for label, _ in _ftrack_hub_order(tmp_path, raw)] == expected  # ftrack's own hub agrees


def test_event_stop_in_one_file_stops_lower_priority_callbacks_in_other_files(tmp_path: Path) -> None:
    calls: list[Any] = []
    group = _group(tmp_path, calls)
    robot = _update(username="robot@locovfx.com")
    _drive(LoadedPlugin("ftrack", tmp_path, group), events_from_ftrack(robot, "ftrack"))
    assert calls == [("b:gate", robot["id"])]
    assert _ftrack_hub_order(tmp_path, robot) == [("b:gate", robot["id"])]
