"""Hosted actions in Chromium: an artist starts a long action and watches its progress page; an operator
sees every invocation on the dashboard, the running one updating live, and opens its job."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.integration.action_support import Steps
from tests.integration.browser_support import ARTIFACTS, ROOT, chromium
from tests.integration.web_support import PASSWORD, serve_app, web_settings
from trackwire.actions.hosted import Action
from trackwire.actions.loading import load_actions
from trackwire.config import HostedActionsSettings
from trackwire.store.sqlite import SqliteStore
from trackwire.web.app import build_app
from trackwire.web.backend import Backend

pytestmark = pytest.mark.needs_server

EXAMPLES = ROOT / "examples" / "actions"
SG_TOKEN = "sg-browser-31d"
AMI = {
    "entity_type": "Playlist",
    "selected_ids": "501",
    "ids": "501,502",
    "project_id": "70",
    "user_id": "42",
    "user_login": "jane.doe",
    "title": "Playlists",
}


if TYPE_CHECKING:
    from playwright.sync_api import Browser

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_an_artist_follows_a_long_action_and_an_operator_sees_every_invocation_live(
    browser: Browser, tmp_path: Path
) -> None:
    expect = playwright_sync.expect
    ARTIFACTS.mkdir(exist_ok=True)
    steps = Steps(4)
    sync = Action("loco.client-review-sync", "Client Review Sync", steps.handler, background=True)
    actions = {**load_actions(EXAMPLES), sync.identifier: sync}
    store = SqliteStore(tmp_path / "tw.db")
    backend = Backend.for_store(store)
    settings = HostedActionsSettings(shotgrid_token=SG_TOKEN, job_heartbeat=0.5)
    app = build_app(backend, web_settings(), actions=actions, action_settings=settings)
    launched = browser
    try:
        with serve_app(app) as server:
            # a short action first, as ShotGrid would post it
            quick = httpx.post(
                f"{server.url}/actions/shotgrid/loco.clear-job-queue",
                params={"token": SG_TOKEN},
                data={**AMI, "entity_type": "Shot", "selected_ids": "1201"},
            )
            assert quick.status_code == 200

            # the artist picks the long action in ShotGrid: a form POST from ShotGrid's page to our URL
            artist = launched.new_context().new_page()
            artist.set_default_timeout(20_000)
            hidden = "".join(f"<input type=hidden name='{k}' value='{html.escape(v)}'>" for k, v in AMI.items())
            url = f"{server.url}/actions/shotgrid/loco.client-review-sync?token={SG_TOKEN}"
            artist.set_content(f"<form id=sg method=post action='{url}'>{hidden}</form>")
            artist.evaluate("document.getElementById('sg').submit()")
            expect(artist).to_have_url(re.compile(r"/actions/jobs/[0-9a-f]{32}\?key="))
            assert SG_TOKEN not in artist.url
            expect(artist.locator("#job-state")).to_have_text("running")
            expect(artist.locator("#job-message")).to_have_text("uploading item 1 of 4")
            steps.gates[0].set()
            steps.gates[1].set()
            # the page polls: no reload, the bar moves
            expect(artist.locator("#job-percent")).to_have_text("50%")
            expect(artist.locator("#job-message")).to_have_text("uploading item 3 of 4")
            artist.screenshot(path=str(ARTIFACTS / "action-job-running.png"), full_page=True)

            # the operator opens the dashboard's list of invocations
            operator = launched.new_context(viewport={"width": 1400, "height": 900}).new_page()
            operator.set_default_timeout(20_000)
            operator.goto(server.url + "/login")
            operator.fill("input[name=password]", PASSWORD)
            operator.click("button[type=submit]")
            operator.click("nav >> text=Actions")
            expect(operator.locator("h1")).to_have_text("Action invocations")
            rows = operator.locator("#invocations-table tbody tr")
            expect(rows).to_have_count(2)
            running = rows.nth(0)
            expect(running).to_contain_text("jane.doe")
            expect(running).to_contain_text("loco.client-review-sync")
            expect(running).to_contain_text("Playlist 501")
            expect(running).to_contain_text("running")
            expect(running.locator(".percent")).to_have_text("50%")
            done = rows.nth(1)
            expect(done).to_contain_text("loco.clear-job-queue")
            expect(done).to_contain_text("succeeded")
            expect(done).to_contain_text("cleared the pending jobs of jane.doe")
            expect(done.locator("td.r")).to_have_text(re.compile(r"^\d+\.\d s$"))

            # the job ends: both pages update on their own
            steps.gates[2].set()
            steps.gates[3].set()
            expect(artist.locator("#job-state")).to_have_text("succeeded")
            expect(artist.locator("#job-result")).to_have_text("review session 501 synced: 4 items")
            artist.screenshot(path=str(ARTIFACTS / "action-job-done.png"), full_page=True)
            expect(running).to_have_attribute("data-state", "succeeded")
            expect(running.locator("td.message")).to_have_text("review session 501 synced: 4 items")
            operator.screenshot(path=str(ARTIFACTS / "invocations.png"), full_page=True)

            # the operator opens the job (logged in: no key needed)
            running.locator("a").click()
            expect(operator.locator("#job-result")).to_have_text("review session 501 synced: 4 items")
            expect(operator.locator("#job-percent")).to_have_text("100%")
    finally:
        for gate in steps.gates:
            gate.set()
        backend.close()
        store.close()
