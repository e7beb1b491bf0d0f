"""A form action in a real browser: ShotGrid's action menu post, our form, filled and submitted in Chromium."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI

from tests.integration.browser_support import chromium_tab
from tests.integration.web_support import serve_app
from trackwire.actions.loading import load_actions
from trackwire.config import HostedActionsSettings
from trackwire.store.memory import MemoryStore
from trackwire.web.actions import INVOKED_TYPE, actions_router
from trackwire.web.backend import Backend

pytestmark = pytest.mark.needs_server

EXAMPLES = Path(__file__).parents[2] / "examples" / "actions"
AMI = {
    "entity_type": "Sequence",
    "selected_ids": "88",
    "ids": "88,89",
    "project_id": "70",
    "project_name": "Moonfall",
    "user_id": "42",
    "user_login": "jane.doe",
    "title": "Sequences",
}


if TYPE_CHECKING:
    from playwright.sync_api import Page

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser_page() -> Iterator[Page]:
    with chromium_tab() as tab:
        yield tab


def test_a_user_fills_the_batch_create_form_in_chromium_and_sees_the_result(browser_page: Page) -> None:
    page = browser_page
    expect = playwright_sync.expect
    store = MemoryStore()
    app = FastAPI()
    backend = Backend.for_store(store)
    app.state.backend = backend
    settings = HostedActionsSettings(shotgrid_token="sg-7f3a9c")
    app.include_router(actions_router(backend, load_actions(EXAMPLES), settings=settings))
    with serve_app(app) as server:
        # what ShotGrid's page does when the user picks the action menu item: a form POST to our URL
        hidden = "".join(f"<input type=hidden name='{k}' value='{html.escape(v)}'>" for k, v in AMI.items())
        url = f"{server.url}/actions/shotgrid/loco.batch-create-shots?token=sg-7f3a9c"
        page.set_content(f"<form id=sg method=post action='{url}'>{hidden}</form>")
        page.evaluate("document.getElementById('sg').submit()")
        expect(page.locator("h1")).to_have_text("Batch Create")
        page.fill("input[name='value.pattern']", "SQ88_{:04d}")
        page.fill("input[name='value.first']", "10")
        page.fill("input[name='value.last']", "40")
        page.click("button[type=submit]")
        expect(page.locator("p.result")).to_have_text(
            "would create 4 shots: SQ88_0010, SQ88_0020, SQ88_0030, SQ88_0040"
        )
    (record,) = [r.event for r in store.read_after(0, 10) if r.event.type == INVOKED_TYPE]
    assert record.data["values"] == {"pattern": "SQ88_{:04d}", "first": 10, "last": 40, "step": 10}
    assert record.data["user"] == {"id": 42, "login": "jane.doe"} and record.data["selected"] == [88]
