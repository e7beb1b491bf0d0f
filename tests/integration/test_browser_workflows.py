"""A workflow run in a real browser (Debian's Chromium via Playwright) against a running daemon: open a
run of a flow with an AND join, see each node's state and the failed step's error, retry it by clicking
and watch it succeed without reloading the page (server-sent events). Screenshots go to
test-artifacts/; the failed run also to docs/img/workflow-run.png when that file is missing or
TRACKWIRE_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.browser_support import ARTIFACTS, chromium_tab
from tests.integration.web_support import PASSWORD
from tests.integration.workflow_web_support import WorkflowDaemon, workflow_daemon

pytestmark = pytest.mark.needs_server

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMAGE = ROOT / "docs" / "img" / "workflow-run.png"
UPDATE_DOCS_IMAGE = os.environ.get("TRACKWIRE_UPDATE_SCREENSHOTS", "") == "1"


if TYPE_CHECKING:
    from playwright.sync_api import Page

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def wf(tmp_path: Path) -> Iterator[WorkflowDaemon]:
    with workflow_daemon(tmp_path) as running:
        yield running


@pytest.fixture
def page(wf: WorkflowDaemon) -> Iterator[Page]:
    with chromium_tab({"width": 1400, "height": 1000}) as tab:
        yield tab


def test_an_operator_sees_a_failed_join_run_retries_the_step_by_clicking_and_sees_it_succeed(
    wf: WorkflowDaemon, page: Page
) -> None:
    expect = playwright_sync.expect
    body = {"flow": "shot-review", "events": ["go"], "sequence": "Shot:7"}
    response = wf.client.post("/api/workflows/start", json=body)
    run_id = response.json()["run"]
    wf.wait_status(run_id, "failure")

    page.goto(wf.url + "/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("nav >> text=Workflows")
    expect(page).to_have_url(re.compile(r"/workflows$"))
    expect(page.locator("#flows tr[data-flow=shot-review]")).to_be_visible()
    row = page.locator(f"#runs-table tr[data-run='{run_id}']")
    expect(row).to_contain_text("failure")
    page.select_option("select[name=status]", "success")
    expect(page.locator("#runs-table")).to_contain_text("No runs match")
    page.select_option("select[name=status]", "failure")
    expect(row).to_be_visible()
    row.locator("a").click()

    # the graph: the two parallel steps succeeded, the join was raised, the step after it failed
    expect(page.locator("h1")).to_contain_text(run_id)
    expect(page.locator("#run-status")).to_have_text("failure")
    graph = page.locator("svg#run-graph")
    expect(graph.locator("[data-node='s:fetch-plates']")).to_have_attribute("data-status", "success")
    expect(graph.locator("[data-node='s:build-script']")).to_have_attribute("data-status", "success")
    expect(graph.locator("[data-node='e:ready']")).to_have_attribute("data-status", "raised")
    expect(graph.locator("[data-node='e:ready']")).to_contain_text("all of 2")
    expect(graph.locator("[data-node='s:publish']")).to_have_attribute("data-status", "failure")
    expect(graph.locator("[data-edge='e:plates.done>e:ready']")).to_have_count(1)
    expect(graph.locator("[data-edge='s:publish>e:ready'], [data-edge='e:go>s:fetch-plates']")).to_have_count(1)
    box = graph.locator("[data-node='s:publish'] rect").bounding_box()
    join = graph.locator("[data-node='e:ready'] rect").bounding_box()
    start = graph.locator("[data-node='e:go'] rect").bounding_box()
    assert box is not None and join is not None and start is not None
    assert start["x"] < join["x"] < box["x"], "layers run left to right: go, ..., the join, publish"
    publish = page.locator("#steps tr[data-step=publish]")
    expect(publish).to_contain_text("the plates are not on the farm disk")
    expect(page.locator("#steps tr[data-step=fetch-plates]")).to_contain_text("plates for Shot:7")
    expect(page.locator("#run-cancel")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "workflow-run-failed.png"), full_page=True)
    if UPDATE_DOCS_IMAGE or not DOCS_IMAGE.exists():
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMAGE))

    # the plates arrive; retry by clicking: the step runs again (held at its gate), and the page
    # follows the run live, without reloading, to its success
    wf.flag.write_text("yes")
    page.click("#run-retry")
    expect(page.locator(".notice")).to_contain_text(f"retry of {run_id} requested")
    expect(graph.locator("[data-node='s:publish']")).to_have_attribute("data-status", "active")
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("#run-cancel")).to_have_count(1)
    page.evaluate("window.stillTheSamePage = true")
    wf.gate.write_text("open")
    expect(page.locator("#run-status")).to_have_text("success", timeout=30_000)
    assert page.evaluate("window.stillTheSamePage === true"), "the page was updated in place (SSE), not reloaded"
    expect(graph.locator("[data-node='s:publish']")).to_have_attribute("data-status", "success")
    expect(publish).to_contain_text("published")
    expect(publish.locator("td").nth(2)).to_have_text("2")
    expect(page.locator("#run-retry")).to_have_count(1)  # a finished run can be retried again
    expect(page.locator("#run-cancel")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "workflow-run-retried.png"), full_page=True)
