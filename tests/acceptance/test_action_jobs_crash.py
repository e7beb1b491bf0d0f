"""Background action jobs survive the daemon: SIGKILL it mid-job, start it again, and every job is accounted for.

The documented rule: a job cut off by a crash is marked ``interrupted`` (never run twice behind the
user's back), unless its action says it is safe to repeat (``rerun_interrupted=True``): then it runs
again. A graceful stop settles the jobs still running after the grace period the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for
from tests.integration.daemon_support import free_port
from trackwire.store import open_store
from trackwire.web.actions import INVOKED_TYPE

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "actions" / "long_actions.py"
TRACKWIRE = Path(sys.executable).with_name("trackwire")
TOKEN = "kitsu-crash-5e1"
BODY = {  # what Kitsu posts for an is_ajax custom action (see tests/integration/test_actions_kitsu.py)
    "entitytype": "shot",
    "selection": ["0e4f8d52-1c5e-4c39-9b8e-6d3a1f2b7c10"],
    "userid": "3f6b8a2c-9d1e-4f70-8a5b-2c3d4e5f6a7b",
    "useremail": "jane@locovfx.com",
}


class Life:
    """``trackwire run`` with its web app, started and stopped by the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = folder / "trackwire.toml"
        self.config.write_text(
            f'[store]\nurl = "sqlite:///tw.db"\n[engine]\nshutdown_grace = 0.5\n[log]\nfile = "trackwire.log"\n'
            f"[web]\nport = {self.port}\n"
            f'[hosted_actions]\npath = "{FIXTURE}"\nkitsu_token = "{TOKEN}"\njob_heartbeat = 0.2\n',
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def start(self) -> None:
        command = [str(TRACKWIRE)] if TRACKWIRE.exists() else [sys.executable, "-m", "trackwire.cli"]
        env = {**os.environ, "TEST_RELEASE_FILE": str(self.folder / "release")}
        with open(self.folder / "stdout.txt", "ab") as out:
            self.proc = subprocess.Popen(
                [*command, "run", "--config", str(self.config)], stdout=out, stderr=subprocess.STDOUT, env=env
            )

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, (self.folder / "stdout.txt").read_text()
            try:
                return self.client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, what="the daemon's web app")

    def invoke(self, action: str) -> str:
        answer = self.client.post(f"/actions/kitsu/{action}", params={"token": TOKEN}, json=BODY)
        assert answer.status_code == 202, answer.text
        status_url: str = answer.json()["job"]["status_url"]
        return status_url.removeprefix(self.url)

    def status(self, path: str) -> dict[str, Any]:
        try:
            answer = self.client.get(path)
        except httpx.HTTPError:
            return {}
        found: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
        return found

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.client.close()


@pytest.fixture
def life(tmp_path: Path) -> Iterator[Life]:
    found = Life(tmp_path)
    yield found
    found.close()


def _running(life: Life, path: str) -> bool:
    status = life.status(path)
    return status.get("state") == "running" and "waiting for the release" in str(status.get("message"))


def _recorded(folder: Path) -> dict[str, dict[str, Any]]:
    store = open_store(f"sqlite:///{folder / 'tw.db'}")
    try:
        events = [r.event for r in store.read_after(0, 1000) if r.event.type == INVOKED_TYPE]
    finally:
        store.close()
    return {e.data["job"]["id"]: e.data for e in events}


def test_a_job_cut_off_by_sigkill_is_marked_interrupted_and_a_repeatable_one_runs_again(life: Life) -> None:
    life.start()
    once, repeatable = life.invoke("test.once"), life.invoke("test.repeatable")
    wait_for(lambda: _running(life, once) and _running(life, repeatable), timeout=30, what="both jobs to run")
    assert life.proc is not None
    life.proc.send_signal(signal.SIGKILL)
    life.proc.wait(30)
    (life.folder / "release").touch()

    life.start()
    wait_for(lambda: life.status(once).get("state") == "interrupted", timeout=30, what="the interruption")
    wait_for(lambda: life.status(repeatable).get("state") == "succeeded", timeout=30, what="the rerun")
    cut, rerun = life.status(once), life.status(repeatable)
    assert "its process stopped while it ran" in cut["error"] and "not run again" in cut["error"]
    assert cut["attempts"] == 1 and cut["result"] is None
    assert rerun["attempts"] == 2 and rerun["result"]["message"].startswith("released after")
    recorded = _recorded(life.folder)
    assert {data["job"]["state"] for data in recorded.values()} == {"interrupted", "succeeded"}
    assert len(recorded) == 2  # each job's end recorded once


def test_a_graceful_stop_settles_the_jobs_still_running_after_the_grace(life: Life) -> None:
    life.start()
    once = life.invoke("test.once")
    wait_for(lambda: _running(life, once), timeout=30, what="the job to run")
    assert life.proc is not None
    life.proc.send_signal(signal.SIGTERM)
    assert life.proc.wait(30) == 0
    (job,) = _recorded(life.folder).values()
    assert job["job"]["state"] == "interrupted" and "not run again" in job["error"]
