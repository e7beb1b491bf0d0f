"""Long hosted actions as background jobs: answered at once, progress on the job's page, timeouts, failures."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import wait_for
from tests.integration.test_actions_hosted import AMI_FIELDS, KITSU_TOKEN, SG_TOKEN
from trackwire.actions.hosted import Action, Invocation, JobCancelled, Outcome
from trackwire.config import HostedActionsSettings
from trackwire.store.memory import MemoryStore
from trackwire.web.action_jobs import action_jobs_router
from trackwire.web.actions import INVOKED_TYPE, actions_router
from trackwire.web.backend import Backend

KITSU_BODY = {  # what Kitsu posts for an is_ajax custom action (see tests/integration/test_actions_kitsu.py)
    "entitytype": "shot",
    "selection": ["0e4f8d52-1c5e-4c39-9b8e-6d3a1f2b7c10"],
    "userid": "3f6b8a2c-9d1e-4f70-8a5b-2c3d4e5f6a7b",
    "useremail": "jane@locovfx.com",
}
SETTINGS = HostedActionsSettings(shotgrid_token=SG_TOKEN, kitsu_token=KITSU_TOKEN, job_heartbeat=0.1)


class Steps:
    """A long action the test drives step by step: each step waits until the test releases it."""

    def __init__(self, count: int = 3) -> None:
        self.gates = [threading.Event() for _ in range(count)]
        self.cancelled = threading.Event()

    def handler(self, inv: Invocation) -> Outcome:
        for number, gate in enumerate(self.gates):
            inv.progress(number / len(self.gates), f"item {number + 1} of {len(self.gates)}")
            gate.wait(30)
        return Outcome(True, f"synced {len(self.gates)} items of {inv.selected[0]}")

    def release(self, number: int) -> None:
        self.gates[number].set()


class App:
    def __init__(self, actions: dict[str, Action]) -> None:
        self.store = MemoryStore()
        self.backend = Backend.for_store(self.store)
        self.app = FastAPI()
        self.app.include_router(actions_router(self.backend, actions, settings=SETTINGS))
        self.app.include_router(action_jobs_router(self.backend, None))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(send())

    def status(self, url: str) -> dict[str, Any]:
        response = self.request("GET", url)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def recorded(self) -> list[dict[str, Any]]:
        return [r.event.data for r in self.store.read_after(0, 100) if r.event.type == INVOKED_TYPE]


@pytest.fixture
def steps() -> Iterator[Steps]:
    found = Steps()
    yield found
    for gate in found.gates:  # never leave a worker thread waiting
        gate.set()


def _long(steps: Steps, **extra: Any) -> dict[str, Action]:
    act = Action("loco.review-sync", "Review Sync", steps.handler, background=True, **extra)
    return {act.identifier: act}


def test_a_long_ami_action_answers_at_once_and_its_page_shows_the_progress_until_the_result(steps: Steps) -> None:
    app = App(_long(steps))
    fields = {**dict(AMI_FIELDS), "entity_type": "Playlist", "selected_ids": "501"}
    answer = app.request("POST", "/actions/shotgrid/loco.review-sync", params={"token": SG_TOKEN}, data=fields)
    assert answer.status_code == 303
    page_url = answer.headers["location"]
    assert page_url.startswith("/actions/jobs/") and "?key=" in page_url
    status_url = page_url.replace("?key=", "/status?key=")
    progress_url = page_url.replace("?key=", "/progress?key=")

    wait_for(lambda: app.status(status_url)["message"] == "item 1 of 3", timeout=10, what="the first step")
    page = app.request("GET", page_url)
    assert page.status_code == 200 and "Cache-Control" in page.headers
    assert "loco.review-sync" in page.text and "started by jane.doe on Playlist 501" in page.text
    assert 'hx-trigger="every 1s"' in page.text and 'src="/static/vendor/htmx-2.0.11.min.js"' in page.text

    steps.release(0)
    wait_for(lambda: app.status(status_url)["percent"] == 33, timeout=10, what="a third done")
    fragment = app.request("GET", progress_url).text
    assert 'value="33"' in fragment and "item 2 of 3" in fragment and "hx-get" in fragment
    assert app.status(status_url)["state"] == "running" and app.recorded() == []

    steps.release(1)
    steps.release(2)
    done = wait_for(lambda: (s := app.status(status_url))["done"] and s, timeout=10, what="the end")
    assert isinstance(done, dict)
    assert done["state"] == "succeeded" and done["percent"] == 100
    assert done["result"] == {"success": True, "message": "synced 3 items of 501"}
    final = app.request("GET", progress_url).text
    assert "synced 3 items of 501" in final and "hx-get" not in final  # the polling stops
    (recorded,) = app.recorded()
    assert recorded["job"]["background"] is True and recorded["job"]["state"] == "succeeded"
    assert recorded["job"]["duration"] > 0 and recorded["result"]["message"] == "synced 3 items of 501"
    assert recorded["user"] == {"id": 42, "login": "jane.doe"} and recorded["selected"] == [501]


def test_a_long_kitsu_action_answers_202_with_the_job_and_its_key_protects_the_job(steps: Steps) -> None:
    app = App(_long(steps))
    body = KITSU_BODY
    answer = app.request("POST", "/actions/kitsu/loco.review-sync", params={"token": KITSU_TOKEN}, json=body)
    assert answer.status_code == 202
    reply = answer.json()
    assert reply["success"] is True and reply["message"].startswith("Review Sync started; follow it at http://tw/")
    job = reply["job"]
    assert job["state"] in ("queued", "running") and job["url"].startswith("http://tw/actions/jobs/")
    status_path = job["status_url"].removeprefix("http://tw")
    bare = status_path.split("?")[0]
    assert app.request("GET", bare).status_code == 401
    wrong = app.request("GET", bare, params={"key": "guessed"})
    unknown = app.request("GET", "/actions/jobs/0123abcd/status", params={"key": "guessed"})
    assert (wrong.status_code, unknown.status_code) == (404, 404) and wrong.json() == unknown.json()
    assert "key" not in app.status(status_path)
    for gate in steps.gates:
        gate.set()
    wait_for(lambda: app.status(status_path)["state"] == "succeeded", timeout=10, what="the job to end")


def test_a_job_past_its_timeout_fails_and_its_handler_is_told_to_stop() -> None:
    stopped = threading.Event()

    def forever(inv: Invocation) -> Outcome:
        try:
            while True:
                inv.progress(0.5, "still working")
                stopped.wait(0.02)
        except JobCancelled:
            stopped.set()
            raise

    act = Action("loco.forever", "Forever", forever, background=True, timeout=0.3)
    app = App({act.identifier: act})
    body = KITSU_BODY
    reply = app.request("POST", "/actions/kitsu/loco.forever", params={"token": KITSU_TOKEN}, json=body).json()
    status_path = reply["job"]["status_url"].removeprefix("http://tw")
    wait_for(lambda: app.status(status_path)["done"], timeout=10, what="the timeout")
    status = app.status(status_path)
    assert status["state"] == "failed" and status["error"] == "timed out after 0.3 s"
    assert stopped.wait(5), "the handler's next progress() raised JobCancelled"
    (recorded,) = app.recorded()
    assert recorded["error"] == "timed out after 0.3 s" and recorded["result"] is None


def test_a_background_handler_that_raises_fails_its_job_with_the_error() -> None:
    def broken(inv: Invocation) -> Outcome:
        inv.progress(0.1, "starting")
        raise RuntimeError("the cloud account refused the upload")

    act = Action("loco.broken", "Broken", broken, background=True)
    app = App({act.identifier: act})
    body = KITSU_BODY
    reply = app.request("POST", "/actions/kitsu/loco.broken", params={"token": KITSU_TOKEN}, json=body).json()
    page_path = reply["job"]["url"].removeprefix("http://tw")
    status_path = reply["job"]["status_url"].removeprefix("http://tw")
    wait_for(lambda: app.status(status_path)["done"], timeout=10, what="the failure")
    assert app.status(status_path)["error"] == "RuntimeError: the cloud account refused the upload"
    assert "RuntimeError: the cloud account refused the upload" in app.request("GET", page_path).text


def test_odd_job_urls_and_keys_are_answered_401_or_404_never_500(steps: Steps) -> None:
    app = App(_long(steps))
    body = KITSU_BODY
    reply = app.request("POST", "/actions/kitsu/loco.review-sync", params={"token": KITSU_TOKEN}, json=body).json()
    job_id = reply["job"]["id"]
    cases = [
        (f"/actions/jobs/{job_id}", {"key": "é\u2603" * 30}),
        (f"/actions/jobs/{job_id}/progress", {"key": "x" * 5000}),
        ("/actions/jobs/%00%ff/status", {"key": "k"}),
        ("/actions/jobs/" + "a" * 2000, {"key": "k"}),
        (f"/actions/jobs/{job_id}/progress", {}),
    ]
    statuses = [app.request("GET", path, params=params).status_code for path, params in cases]
    assert statuses == [404, 404, 404, 404, 401]
    page = app.request("GET", f"/actions/jobs/{job_id}", params={"key": "wrong"})
    assert "no such job (or the key is wrong)" in page.text and reply["job"]["url"].split("key=")[1] not in page.text


def test_the_runner_deletes_jobs_past_their_retention_and_keeps_the_rest() -> None:
    import time

    from trackwire.actions.jobs import JobRunner
    from trackwire.core.jobs import Job
    from trackwire.store.memory_jobs import MemoryJobs

    jobs = MemoryJobs()
    now = time.time()
    for name, ended in (("ancient", now - 40 * 86400), ("recent", now - 86400)):
        job = Job(name, "k", "loco.sync", "kitsu", {}, True, state="running", owner="me", started=ended, beat=ended)
        jobs.insert(job)
        jobs.finish(name, "me", "succeeded", "", None, None, ended)
    runner = JobRunner(jobs, dict, lambda e: None, heartbeat=0.05, retention=30 * 86400.0)
    runner.start()
    try:
        wait_for(lambda: jobs.get("ancient") is None, timeout=10, what="the ancient job to be pruned")
    finally:
        runner.stop(grace=1.0)
    assert jobs.get("recent") is not None
