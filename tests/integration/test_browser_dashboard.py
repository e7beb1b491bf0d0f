"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a running daemon.

Load the overview, filter the events list, open an event, replay a dead letter by clicking, and see
the consumer recover. Screenshots go to test-artifacts/; the overview also to docs/img/dashboard.png
(the README's picture) when that file is missing or TRACKWIRE_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import wait_for
from tests.integration.browser_support import ARTIFACTS, ROOT, chromium_tab
from tests.integration.daemon_support import LiveDaemon, live_daemon, studio_events
from tests.integration.web_support import PASSWORD

pytestmark = pytest.mark.needs_server

README_IMAGE = ROOT / "docs" / "img" / "dashboard.png"
UPDATE_README_IMAGE = os.environ.get("TRACKWIRE_UPDATE_SCREENSHOTS", "") == "1"

if TYPE_CHECKING:
    from playwright.sync_api import Page

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveDaemon]:
    with live_daemon(tmp_path) as running:
        yield running


@pytest.fixture
def page(live: LiveDaemon) -> Iterator[Page]:
    with chromium_tab({"width": 1400, "height": 1000}) as tab:
        yield tab


def _dead_letters(live: LiveDaemon) -> list[tuple[str, int]]:
    return [(g, r.event_id) for g, r in live.store.dead_letters(None)]


def test_an_operator_logs_in_filters_opens_an_event_replays_a_dead_letter_and_sees_recovery(
    live: LiveDaemon, page: Page
) -> None:
    expect = playwright_sync.expect
    # the farm plugin fails for Shot:1013 until the farm is "up": those deliveries are dead-lettered
    wait_for(lambda: len(_dead_letters(live)) >= 2, timeout=60, what="dead letters for Shot:1013")
    live.store.append(studio_events()[40:], source="shotgrid:studio", cursor={"last_id": 61})
    live.daemon.notify_appended()
    wait_for(lambda: live.api().get("/api/groups/audit").json()["lag"] == 0, timeout=60, what="audit to catch up")

    page.goto(live.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#groups-table")).to_contain_text("farm")
    expect(page.locator("#dead-count")).not_to_have_text("0")
    expect(page.locator("#groups-table tr[data-group=farm] .dead-cell")).not_to_have_text("0")
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    if UPDATE_README_IMAGE or not README_IMAGE.exists():
        # not on every run: a tracked file rewritten by each test run would dirty every checkout
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_IMAGE))

    # the events list, filtered by type with the select (htmx swaps the table and pushes the URL)
    page.click("nav >> text=Events")
    expect(page.locator("#events-table tbody tr")).to_have_count(50)
    page.select_option("select[name=type]", "Shotgun_Version_New")
    expect(page).to_have_url(re.compile(r"type=Shotgun_Version_New"))
    rows = page.locator("#events-table tbody tr")
    expect(rows).to_have_count(15)
    for text in rows.all_inner_texts():
        assert "Shotgun_Version_New" in text
    page.fill("input[name=entity]", "Shot:1013")
    page.select_option("select[name=type]", "Shotgun_Task_Change")
    expect(rows.first).to_contain_text("Shot:1013")
    page.screenshot(path=str(ARTIFACTS / "events-filtered.png"), full_page=True)

    # open one of Shot:1013's events: farm dead, notify skipped it by filter, audit delivered it
    dead_id = min(i for g, i in _dead_letters(live) if g == "farm")
    page.click(f"#events-table tr[data-event='{dead_id}'] a")
    expect(page.locator("h1")).to_contain_text(f"Event {dead_id}")
    expect(page.locator("#fates tr[data-group=farm]")).to_contain_text("dead")
    expect(page.locator("#fates tr[data-group=farm]")).to_contain_text("render farm unreachable")
    expect(page.locator("#fates tr[data-group=notify]")).to_contain_text("skipped by filter")
    expect(page.locator("#fates tr[data-group=audit]")).to_contain_text("delivered")
    expect(page.locator("pre.payload")).to_contain_text('"entry"')
    page.screenshot(path=str(ARTIFACTS / "event.png"), full_page=True)

    # the farm comes back; replay the dead letters by clicking
    live.flag.write_text("up")
    page.click("nav >> text=Dead letters")
    expect(page.locator("#deadletters")).to_contain_text("render farm unreachable")
    page.screenshot(path=str(ARTIFACTS / "deadletters.png"), full_page=True)
    while page.locator("#deadletters button.replay").count():
        page.locator("#deadletters button.replay").first.click()
        expect(page.locator(".notice")).to_contain_text("replayed 1 dead letter(s) of farm")
    wait_for(lambda: not _dead_letters(live), timeout=30, what="no dead letters left")

    # the consumer recovers: the event is delivered, the overview shows no dead letter
    page.goto(f"{live.url}/events/{dead_id}")
    wait_for(
        lambda: live.api().get(f"/api/events/{dead_id}").json()["fates"][1]["state"] == "delivered",
        timeout=30,
        what="the replayed event to be delivered",
    )
    page.reload()
    expect(page.locator("#fates tr[data-group=farm]")).to_contain_text("delivered")
    page.goto(live.url + "/")
    expect(page.locator("#groups-table tr[data-group=farm] .dead-cell")).to_have_text("0")
    expect(page.locator("#dead-count")).to_have_text("0")
    page.screenshot(path=str(ARTIFACTS / "recovered.png"), full_page=True)


def test_the_overview_updates_live_without_a_reload(live: LiveDaemon, page: Page) -> None:
    expect = playwright_sync.expect
    page.goto(live.url + "/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    before = int(page.locator("#last-event").inner_text())
    live.store.append(studio_events()[40:], source="shotgrid:studio", cursor={"last_id": 61})
    live.daemon.notify_appended()
    expect(page.locator("#last-event")).to_have_text(str(before + 21), timeout=15_000)
