"""`trackwire run` against the fake ftrack event server: hub events stored, ftrack plugins run, replies published."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.fakes.ftrack_server import FakeFtrackServer
from trackwire.store.sqlite import SqliteStore

pytest.importorskip("ftrack_api")

TRACKWIRE = [str(Path(sys.executable).parent / "trackwire")]
UPDATE = Path(__file__).parents[1] / "fixtures" / "ftrack" / "update_status.json"

PLUGIN = """
import json, os
import ftrack_api

def record(event):
    with open(os.environ["FTRACK_RECORD"], "a") as out:
        out.write(json.dumps([event["topic"], event["id"]]) + "\\n")

def discover(event):
    return {"items": [{"label": "Clear Job Queue", "actionIdentifier": "loco.clear-job-queue"}]}

def register(session, **kw):
    if not isinstance(session, ftrack_api.Session):
        return
    session.event_hub.subscribe("topic=ftrack.update", record)
    session.event_hub.subscribe("topic=ftrack.action.discover", discover)
"""

# A later file (by name) whose callback has a lower priority: ftrack runs it first, and its stop()
# keeps studio_events.record from seeing the robot's events, across files, as ftrack's hub does.
GATE = """
import json, os

def gate(event):
    with open(os.environ["FTRACK_RECORD"], "a") as out:
        out.write(json.dumps(["gate", event["id"]]) + "\\n")
    if event["source"]["user"]["username"].startswith("robot"):
        event.stop()

def register(session, **kw):
    session.event_hub.subscribe("topic=ftrack.update", gate, priority=10)
"""


@pytest.fixture
def server() -> Iterator[FakeFtrackServer]:
    with FakeFtrackServer() as fake:
        yield fake


def test_the_daemon_stores_hub_events_runs_ftrack_plugins_and_publishes_their_replies(
    server: FakeFtrackServer, tmp_path: Path
) -> None:
    plugins = tmp_path / "ftrack_plugins"
    plugins.mkdir()
    (plugins / "studio_events.py").write_text(PLUGIN, encoding="utf-8")
    (plugins / "z_gate.py").write_text(GATE, encoding="utf-8")
    record = tmp_path / "record.txt"
    (tmp_path / "trackwire.toml").write_text(
        f"""
[store]
url = "sqlite:///{tmp_path}/trackwire.db"
[web]
enabled = false
[log]
file = ""
[engine]
shutdown_grace = 1.0
[ftrack]
server_url = "{server.url}"
api_user = "events@locovfx.com"
api_key = "secret"
subscription = "topic=ftrack.update or topic=ftrack.action.*"
plugin_session = "offline"
""",
        encoding="utf-8",
    )
    env = {"FTRACK_EVENT_PLUGIN_PATH": str(plugins), "FTRACK_RECORD": str(record), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [*TRACKWIRE, "run", "--config", str(tmp_path / "trackwire.toml"), "--no-web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: server.client_count and server.subscriptions, 60, what="the daemon to subscribe")
        raw = json.loads(UPDATE.read_text())
        server.emit(raw)
        robot = {**raw, "id": "robot-1", "source": {**raw["source"], "user": {"id": "r1", "username": "robot@x"}}}
        server.emit(robot)
        server.emit(
            {
                "id": "disc-1",
                "topic": "ftrack.action.discover",
                "source": {"id": "web-7", "user": {}},
                "data": {"selection": []},
            }
        )
        wait_for(lambda: record.exists() and len(record.read_text().splitlines()) >= 3, 60, what="the plugins to run")
        replies = wait_for(
            lambda: [e for e in server.published if e["topic"] == "ftrack.meta.reply"], 60, what="the reply"
        )
    finally:
        proc.terminate()
        proc.wait(30)
    assert [json.loads(line) for line in record.read_text().splitlines()] == [
        ["gate", raw["id"]],  # priority 10 in z_gate.py runs before priority 100 in studio_events.py
        ["ftrack.update", raw["id"]],
        ["gate", "robot-1"],  # stopped: studio_events.record never sees it
    ]
    assert isinstance(replies, list) and replies[0]["target"] == "id=web-7"
    assert replies[0]["inReplyToEvent"] == "disc-1"
    store = SqliteStore(tmp_path / "trackwire.db")
    try:
        types = [r.event.type for r in store.read_after(0, 100)]
    finally:
        store.close()
    assert types.count("ftrack.update") == 4 and "ftrack.action.discover" in types and "ftrack.meta.reply" in types
