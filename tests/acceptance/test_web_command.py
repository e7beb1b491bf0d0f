"""`trackwire web` as a subprocess: serves a store alone, needs the token, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import wait_for
from tests.integration.daemon_support import free_port
from tests.integration.web_support import TOKEN, fill_store

TRACKWIRE = Path(sys.executable).with_name("trackwire")


def test_trackwire_web_serves_the_store_and_its_actions_reach_the_store(tmp_path: Path) -> None:
    fill_store(tmp_path / "tw.db").close()
    port = free_port()
    (tmp_path / "trackwire.toml").write_text(
        f'[store]\nurl = "sqlite:///tw.db"\n[log]\nfile = ""\n[web]\nport = {port}\n'
    )
    env = dict(os.environ, TRACKWIRE_WEB__TOKEN=TOKEN)
    command = [str(TRACKWIRE)] if TRACKWIRE.exists() else [sys.executable, "-m", "trackwire.cli"]
    process = subprocess.Popen(
        [*command, "web", "--config", str(tmp_path / "trackwire.toml")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with (
            httpx.Client(base_url=url, timeout=10) as anonymous,
            httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
        ):

            def up() -> bool:
                try:
                    return anonymous.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, timeout=30, what="trackwire web to answer")
            assert anonymous.get("/api/groups").status_code == 401
            assert {g["name"] for g in client.get("/api/groups").json()} == {"notify", "audit"}
            assert client.post("/api/deadletters/notify/5/replay").json() == {"changed": 1}
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert TOKEN not in output
    from trackwire.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "tw.db")
    try:
        assert store.dead_letters("notify") == []
    finally:
        store.close()
