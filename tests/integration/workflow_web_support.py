"""A real daemon with workflows and its web app on a free port, in a background thread, for the
dashboard's workflow tests (API and browser)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_for
from tests.integration.daemon_support import free_port
from tests.integration.web_support import PASSWORD, TOKEN
from trackwire.config import load_settings
from trackwire.runtime.daemon import Daemon
from trackwire.store.sqlite import SqliteStore

# Two steps in parallel, an AND join, then a step that fails until the flag file exists (and, once it
# does, waits for the gate file, so a test sees it running).
PUBLISH = """
test -f {flag} || {{ echo 'the plates are not on the farm disk' >&2; exit 3; }}
while [ ! -f {gate} ]; do sleep 0.05; done
echo published
"""
JOIN_FLOW = """
name = "shot-review"

[[event]]
name = "go"
[[event]]
name = "plates.done"
[[event]]
name = "script.done"
[[event]]
name = "ready"
expr = {{ all = ["plates.done", "script.done"] }}

[[step]]
name = "fetch-plates"
command = "echo plates for $TRACKWIRE_STEP_SEQUENCE"
triggers = {{ success = ["plates.done"] }}

[[step]]
name = "build-script"
command = ["sh", "-c", "echo script for $TRACKWIRE_STEP_SEQUENCE"]
triggers = {{ success = ["script.done"] }}

[[step]]
name = "publish"
command = ["sh", "{script}"]

[[assoc]]
event = "go"
steps = ["fetch-plates", "build-script"]

[[assoc]]
event = "ready"
steps = ["publish"]
"""


@dataclass
class WorkflowDaemon:
    daemon: Daemon
    store: SqliteStore
    url: str
    flag: Path
    flows: Path
    client: httpx.Client
    gate: Path

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.client.get(f"/api/workflows/runs/{run_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def wait_status(self, run_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            response = self.client.get(f"/api/workflows/runs/{run_id}")
            if response.status_code != 200:
                return None
            view: dict[str, Any] = response.json()
            return view if view["status"] == status else None

        found = wait_for(done, timeout=timeout, interval=0.1, what=f"run {run_id} to be {status}")
        assert isinstance(found, dict)
        return found


@contextmanager
def workflow_daemon(tmp_path: Path, **overrides: Any) -> Iterator[WorkflowDaemon]:
    flows = tmp_path / "flows"
    flows.mkdir()
    flag = tmp_path / "plates-on-disk"
    gate = tmp_path / "publish-gate"
    script = tmp_path / "publish.sh"
    script.write_text(PUBLISH.format(flag=flag, gate=gate), encoding="utf-8")
    (flows / "review.toml").write_text(JOIN_FLOW.format(script=script), encoding="utf-8")
    port = free_port()
    values: dict[str, Any] = {
        "store.url": f"sqlite:///{tmp_path / 'tw.db'}",
        "log.file": "",
        "web.port": port,
        "web.token": TOKEN,
        "web.password": PASSWORD,
        "workflows": {"paths": [str(flows)]},
    }
    values.update(overrides)
    settings = load_settings(None, overrides=values)
    store = SqliteStore(tmp_path / "tw.db")
    daemon = Daemon(settings, store=store)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(daemon.run(install_signals=False, ready=lambda _d: ready.set()),),
        daemon=True,
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0)
    try:
        wait_for(ready.is_set, timeout=60, what="the daemon to start")

        def serving() -> bool:
            service = daemon.workflows
            if service is None or not service.ready.is_set():
                return False
            try:
                return client.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(serving, timeout=60, what="the web app and the workflow service")
        yield WorkflowDaemon(daemon, store, url, flag, flows, client, gate)
    finally:
        client.close()
        loop.call_soon_threadsafe(daemon.request_stop)
        thread.join(30)
        loop.close()
