"""A real daemon (worker processes, SQLite, the web app on a free port) in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_for
from tests.integration.web_support import PASSWORD, TOKEN
from trackwire.config import load_settings
from trackwire.core.event import Event, Ref
from trackwire.runtime.daemon import Daemon
from trackwire.store.sqlite import SqliteStore

FLAKY_PLUGIN = """
from __future__ import annotations
from pathlib import Path
from trackwire import Context, Event, on

@on("Shotgun_Task_Change")
def publish_to_farm(event: Event, ctx: Context) -> None:
    flag = Path(ctx.options["flag"])
    if event.entity is not None and event.entity.id == 1013 and not flag.exists():
        raise ConnectionError(f"render farm unreachable while publishing {event.entity}")
"""

NOTIFY_PLUGIN = """
from __future__ import annotations
from trackwire import Context, Event, on

@on("Shotgun_Version_New")
def tell_supervisor(event: Event, ctx: Context) -> None:
    ctx.log.info("new version %s", event.entity)
"""

AUDIT_PLUGIN = """
from __future__ import annotations
from trackwire import Context, Event, on

@on("Shotgun_*")
def audit(event: Event, ctx: Context) -> None:
    pass
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveDaemon:
    daemon: Daemon
    store: SqliteStore
    url: str
    flag: Path
    _client: list[httpx.Client] = field(default_factory=list)

    def api(self) -> httpx.Client:
        """A client authenticated with the token (one per daemon, closed when it stops)."""
        if not self._client:
            self._client.append(
                httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0)
            )
        return self._client[0]


def studio_events(count: int = 60) -> list[Event]:
    events = []
    for i in range(1, count + 1):
        kind = "Shotgun_Version_New" if i % 4 == 0 else "Shotgun_Task_Change"
        entity = Ref("Version", 5000 + i) if kind == "Shotgun_Version_New" else Ref("Shot", 1010 + i % 6)
        events.append(
            Event(
                source="shotgrid:studio" if i % 3 else "kitsu:main",
                source_id=str(i),
                type=kind,
                entity=entity,
                project=Ref("Project", 70),
                attribute=None if kind == "Shotgun_Version_New" else "sg_status_list",
                old=None if kind == "Shotgun_Version_New" else "ip",
                new=None if kind == "Shotgun_Version_New" else "rev",
                data={"entry": i},
            )
        )
    events.append(Event(source="kitsu:main", source_id="c1", type="comment:new", entity=Ref("Task", "a1b2")))
    return events


@contextmanager
def live_daemon(tmp_path: Path, **web: Any) -> Iterator[LiveDaemon]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "farm.py").write_text(FLAKY_PLUGIN)
    (plugins / "notify.py").write_text(NOTIFY_PLUGIN)
    (plugins / "audit.py").write_text(AUDIT_PLUGIN)
    flag = tmp_path / "farm-is-up"
    port = free_port()
    overrides: dict[str, Any] = {
        "store.url": f"sqlite:///{tmp_path / 'tw.db'}",
        "log.file": "",
        "web.port": port,
        "web.token": TOKEN,
        "web.password": PASSWORD,
        "engine.backoff_base": 0.05,
        "engine.backoff_cap": 0.1,
        "plugins": [
            {"path": str(plugins / "farm.py"), "start": "beginning", "max_attempts": 2, "options": {"flag": str(flag)}},
            {"path": str(plugins / "notify.py"), "start": "beginning"},
            {"path": str(plugins / "audit.py"), "start": "beginning"},
        ],
    }
    overrides.update({f"web.{k}": v for k, v in web.items()})
    settings = load_settings(None, overrides=overrides)
    store = SqliteStore(tmp_path / "tw.db")
    store.append(studio_events()[:40], source="shotgrid:studio", cursor={"last_id": 40})
    daemon = Daemon(settings, store=store)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(daemon.run(install_signals=False, ready=lambda _d: ready.set()),),
        daemon=True,
    )
    thread.start()
    try:
        wait_for(ready.is_set, timeout=60, what="the daemon to start")
        url = f"http://127.0.0.1:{port}"

        def web_up() -> bool:
            try:
                with httpx.Client(timeout=2) as probe:
                    return probe.get(url + "/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(web_up, timeout=30, what="the web app")
        live = LiveDaemon(daemon, store, url, flag)
        try:
            yield live
        finally:
            for client in live._client:
                client.close()
    finally:
        loop.call_soon_threadsafe(daemon.request_stop)
        thread.join(30)
        loop.close()
