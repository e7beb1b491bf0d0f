"""Helpers for the web tests: a real uvicorn server in a thread, a store with known contents."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.conftest import wait_for
from trackwire.config import HookSettings, WebSettings
from trackwire.core.event import Event, Ref
from trackwire.core.ledger import Checkpoint, DeliveryRow, State
from trackwire.store.sqlite import SqliteStore

TOKEN = "test-token-5f1c"
PASSWORD = "test-password-9a7e"
HOOK_SECRET = "hook-secret-42"
HOOK_TOKEN = "hook-bearer-77"


def web_settings(**extra: Any) -> WebSettings:
    hooks = (
        HookSettings(name="signed", secret=HOOK_SECRET, entity_field="entity", project_field="project"),
        HookSettings(name="bearer", token=HOOK_TOKEN, id_field="delivery.id", type_field="kind"),
        HookSettings(name="hashed", token=HOOK_TOKEN, id_field=None),
    )
    values: dict[str, Any] = {"token": TOKEN, "password": PASSWORD, "port": 0, "hooks": hooks}
    values.update(extra)
    return WebSettings(**values)


@dataclass
class RunningServer:
    url: str
    app: FastAPI
    loop: asyncio.AbstractEventLoop
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, *, token: str | None = TOKEN, **kwargs: Any) -> httpx.Client:
        """A client (closed when the server stops), sending ``token`` as a bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)
        self.clients.append(client)
        return client

    def login(self) -> httpx.Client:
        client = self.client(token=None)
        response = client.post(
            "/login", data={"username": "admin", "password": PASSWORD, "next": "/"}, follow_redirects=True
        )
        assert response.status_code == 200, response.text
        return client


@contextmanager
def serve_app(app: FastAPI) -> Iterator[RunningServer]:
    """Serve ``app`` with uvicorn on a free port in a background thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20, what="uvicorn to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    running = RunningServer(f"http://127.0.0.1:{port}", app, loop)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        backend = app.state.backend
        loop.call_soon_threadsafe(backend.stop.set)
        server.should_exit = True
        thread.join(15)
        loop.close()


def fill_store(path: Path, events: int = 120) -> SqliteStore:
    """A store with ``events`` task changes over five shots, a group ``notify`` with one dead letter
    (event 5), one retrying delivery (event 6), and a group ``audit`` that has not reached the end."""
    store = SqliteStore(path)
    store.append(
        [
            Event(
                source="shotgrid:studio" if i % 2 else "kitsu:main",
                source_id=str(i),
                type="Shotgun_Task_Change" if i % 3 else "Shotgun_Version_New",
                entity=Ref("Shot", 1000 + i % 5),
                project=Ref("Project", 70 if i < 100 else 71),
                attribute="sg_status_list",
                old="ip",
                new="fin",
                data={"entry": i},
            )
            for i in range(1, events + 1)
        ],
        source="shotgrid:studio",
        cursor={"last_id": events},
    )
    store.register_group("notify", 0)
    store.register_group("audit", 0)
    dead = DeliveryRow(
        5, "Shot:1000", State.DEAD, 5, None, ("notify.on_change",), "KeyError: 'sg_status'", "Trace\n  x"
    )
    retry = DeliveryRow(6, "Shot:1001", State.RETRY, 2, 1e12, ("notify.on_change",), "TimeoutError: slow", None)
    store.write_checkpoint("notify", Checkpoint(events, (dead, retry), ()))
    store.write_checkpoint("audit", Checkpoint(50, (), ()))
    return store
