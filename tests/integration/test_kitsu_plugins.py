"""The Kitsu plugin API and the studio recipes in a real daemon against a real zou.

One daemon (Kitsu source with socket.io wake-ups, worker processes, SQLite) runs for the module; each
test makes changes with gazu and checks the plugin calls, the effects in Kitsu and the files on disk.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import trackwire.recipes as recipes
from tests.conftest import wait_for
from tests.integration.kitsu_server import KitsuServer, boot, unique
from trackwire.config import load_settings
from trackwire.recipes.logic import dailies_day
from trackwire.runtime.daemon import Daemon

pytestmark = [pytest.mark.needs_server, pytest.mark.timeout(900)]

gazu = pytest.importorskip("gazu")

RECIPES = Path(recipes.__file__).parent

PROBE = """
from __future__ import annotations

import json

from trackwire.plugins.kitsu import Kitsu

kitsu = Kitsu()


@kitsu.on("task:status-changed")
def probe(event, k):
    task = k.entity()
    again = k.entity()
    status = k.get("TaskStatus", event.new, max_age=60)
    me = k.gazu.client.get_current_user(client=k.client)
    line = {"kitsu_id": event.source_id, "task": task["id"], "same": task is again, "status": status["short_name"],
            "user": me["email"]}
    with open(k.options["out"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\\n")
"""


class SlackCatcher(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Studio:
    kitsu: KitsuServer
    client: Any
    root: Path
    probe_out: Path
    slack: list[dict[str, Any]]
    daemon: Daemon

    def probes(self) -> list[dict[str, Any]]:
        if not self.probe_out.exists():
            return []
        return [json.loads(line) for line in self.probe_out.read_text(encoding="utf-8").splitlines()]

    def handled(self, group: str, task_id: str, count: int) -> bool:
        """The group's durable position is past the ``count``-th status change of the task."""
        store = self.daemon.store
        assert store is not None
        changes = [
            r.id
            for r in store.read_after(0, 1_000_000, ["task:status-changed"])
            if r.event.entity is not None and r.event.entity.id == task_id
        ]
        record = next((g for g in store.groups() if g.name == group), None)
        return len(changes) >= count and record is not None and record.position >= changes[count - 1]

    def status(self, short_name: str) -> dict[str, Any]:
        return dict(gazu.task.get_task_status_by_short_name(short_name, client=self.client))

    def shot_task(self, project_name: str, task_type: str = "Animation") -> tuple[Any, Any, Any, Any]:
        project = gazu.project.new_project(project_name, production_type="featurefilm", client=self.client)
        sequence = gazu.shot.new_sequence(project, "SQ01", client=self.client)
        shot = gazu.shot.new_shot(project, sequence, "SH010", client=self.client)
        kind = gazu.task.get_task_type_by_name(task_type, client=self.client)
        task = gazu.task.new_task(shot, kind, client=self.client)
        return project, sequence, shot, task


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    kitsu = boot()
    folder = tmp_path_factory.mktemp("kitsu-studio")
    root, templates = folder / "prod", folder / "templates"
    templates.mkdir()
    (templates / "animation.ma").write_text("// Maya ASCII animation template\n")
    (folder / "probe.py").write_text(PROBE)
    SlackCatcher.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlackCatcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    common = {"url": kitsu.url, "email": kitsu.email, "password": kitsu.password}
    plugins = [
        {"path": str(folder / "probe.py"), "options": {**common, "out": str(folder / "probe.jsonl")}},
        {"path": str(RECIPES / "kitsu_project_folders.py"), "options": {**common, "root": str(root)}},
        {
            "path": str(RECIPES / "kitsu_task_folder.py"),
            "options": {**common, "root": str(root), "templates": str(templates)},
        },
        {"path": str(RECIPES / "kitsu_dailies.py"), "options": {**common, "timezone": "UTC", "cutoff": "10:00"}},
        {"path": str(RECIPES / "kitsu_task_status.py"), "options": common},
        {
            "path": str(RECIPES / "kitsu_handoff.py"),
            "options": {**common, "slack_webhook": webhook, "state_dir": str(folder)},
        },
    ]
    (folder / "trackwire.toml").write_text("")
    settings = load_settings(
        folder / "trackwire.toml",
        overrides={
            "store.url": f"sqlite:///{folder / 'tw.db'}",
            "log.file": "",
            "web.enabled": False,
            "plugins": [{**p, "start": "beginning"} for p in plugins],
            "kitsu": {
                "enabled": True,
                "url": kitsu.url,
                "event_url": kitsu.event_url,
                "email": kitsu.email,
                "password": kitsu.password,
                "poll_interval": 1.0,
                "wakeup": True,
            },
        },
    )
    daemon = Daemon(settings)
    ready = threading.Event()
    loop: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        async def main() -> None:
            loop.append(asyncio.get_running_loop())
            await daemon.run(install_signals=False, ready=lambda _: ready.set())

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(120), "the daemon did not start"
    assert daemon.store is not None
    wait_for(lambda: daemon.store.get_cursor("kitsu"), 60, what="the Kitsu source's first poll")  # type: ignore[union-attr]
    client = kitsu.client()
    try:
        yield Studio(kitsu, client, root, folder / "probe.jsonl", SlackCatcher.received, daemon)
    finally:
        loop[0].call_soon_threadsafe(daemon.request_stop)
        thread.join(60)
        server.shutdown()
        server.server_close()
        client.session.close()


def test_a_handler_gets_the_event_a_logged_in_gazu_client_and_the_entity_it_names(studio: Studio) -> None:
    _, _, _, task = studio.shot_task(unique("Probe"))
    gazu.task.add_comment(task, studio.status("wip"), "go", client=studio.client)
    found = wait_for(lambda: [p for p in studio.probes() if p["task"] == task["id"]], 30, what="the probe call")
    assert isinstance(found, list) and len(found) == 1
    assert found[0] == {**found[0], "same": True, "status": "wip", "user": studio.kitsu.email}


def test_a_new_project_gets_its_folder_tree(studio: Studio) -> None:
    name = unique("Folders")
    gazu.project.new_project(name, production_type="featurefilm", client=studio.client)
    base = studio.root / name.replace(" ", "_")
    wait_for(lambda: (base / "shots").is_dir(), 30, what="the project's folders")
    assert {p.name for p in base.iterdir()} == {"editorial", "assets", "shots", "output"}


def test_a_new_task_gets_its_folder_and_its_task_types_template_file(studio: Studio) -> None:
    name = unique("Tasks")
    studio.shot_task(name)
    target = studio.root / name.replace(" ", "_") / "shots" / "SQ01" / "SH010" / "Animation" / "SH010_Animation_v001.ma"
    wait_for(target.exists, 30, what=f"{target}")
    assert target.read_text() == "// Maya ASCII animation template\n"


def test_waiting_for_approval_adds_the_shot_once_to_the_dailies_of_the_day(studio: Studio) -> None:
    project, _, shot, task = studio.shot_task(unique("Dailies"))
    comment = gazu.task.add_comment(task, studio.status("wip"), "v1", client=studio.client)
    preview = gazu.task.create_preview(task, comment, client=studio.client)
    before = datetime.now(UTC)
    gazu.task.add_comment(task, studio.status("wfa"), "please review", client=studio.client)
    days = {dailies_day(before, UTC), dailies_day(datetime.now(UTC), UTC)}
    names = [f"Dailies {day:%Y-%m-%d}" for day in days]

    def in_playlist() -> list[dict[str, Any]]:
        for name in names:
            playlist = gazu.playlist.get_playlist_by_name(project, name, client=studio.client)
            if playlist:
                full = gazu.playlist.get_playlist(playlist["id"], client=studio.client)
                return [e for e in full.get("shots") or [] if e["entity_id"] == shot["id"]]
        return []

    entries = wait_for(in_playlist, 30, what="the shot in the dailies playlist")
    assert isinstance(entries, list) and entries[0]["preview_file_id"] == preview["id"]
    gazu.task.add_comment(task, studio.status("wip"), "more work", client=studio.client)
    gazu.task.add_comment(task, studio.status("wfa"), "again", client=studio.client)
    wait_for(lambda: studio.handled("kitsu_dailies", task["id"], 4), 30, what="the dailies recipe past both changes")
    assert len(in_playlist()) == 1


def test_a_validated_latest_version_sets_the_task_status(studio: Studio) -> None:
    _, _, _, task = studio.shot_task(unique("Versions"))
    comment = gazu.task.add_comment(task, studio.status("wfa"), "v1", client=studio.client)
    preview = gazu.task.create_preview(task, comment, client=studio.client)
    gazu.client.put(f"data/preview-files/{preview['id']}", {"validation_status": "validated"}, client=studio.client)

    def status() -> str:
        return str(gazu.task.get_task(task["id"], client=studio.client)["task_status"]["short_name"])

    wait_for(lambda: status() == "done", 30, what="the task set to done")


def test_animation_done_tells_the_lighting_artist_on_slack_once(studio: Studio) -> None:
    _, _, shot, task = studio.shot_task(unique("Handoff"))
    lighting = gazu.task.new_task(
        shot, gazu.task.get_task_type_by_name("Lighting", client=studio.client), client=studio.client
    )
    me = gazu.client.get_current_user(client=studio.client)
    gazu.task.assign_task(lighting, me, client=studio.client)
    gazu.task.add_comment(task, studio.status("done"), "animation finished", client=studio.client)

    def messages() -> list[dict[str, Any]]:
        return [m for m in studio.slack if "SH010: Animation is" in m["text"] and "Lighting" in m["text"]]

    wait_for(lambda: [p for p in studio.probes() if p["task"] == task["id"] and p["status"] == "done"], 30)
    wait_for(messages, 30, what="the Slack message")
    wait_for(lambda: studio.handled("kitsu_handoff", task["id"], 1), 30, what="the hand-off recipe done")
    assert len(messages()) == 1
