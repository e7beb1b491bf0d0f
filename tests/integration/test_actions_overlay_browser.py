"""ShotGrid's "Open in Modal Overlay" in Chromium: another site's page posts an action menu item's payload into
an iframe (``target=`` the frame), and the action's pages render inside it; a site that is not allowed gets
nothing rendered, and the dashboard is never framed.

Trackwire is served at ``http://127.0.0.1:<port>``; the "ShotGrid sites" are tiny HTTP servers at
``http://localhost:<other port>``: another origin and another *site* (so the dashboard's SameSite=Strict
cookie is not sent into the frame, as with a real ShotGrid site).
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from tests.integration.action_support import SEQUENCE_AMI, Steps
from tests.integration.browser_support import ARTIFACTS, ROOT, chromium
from tests.integration.web_support import PASSWORD, serve_app, web_settings
from trackwire.actions.hosted import Action
from trackwire.actions.loading import load_actions
from trackwire.config import HostedActionsSettings
from trackwire.store.sqlite import SqliteStore
from trackwire.web.app import build_app
from trackwire.web.auth import COOKIE
from trackwire.web.backend import Backend

pytestmark = pytest.mark.needs_server


if TYPE_CHECKING:
    from playwright.sync_api import Browser

playwright_sync = pytest.importorskip("playwright.sync_api")

EXAMPLES = ROOT / "examples" / "actions"
SG_TOKEN = "sg-overlay-6c2"
SEQUENCE = SEQUENCE_AMI
PLAYLIST = SEQUENCE | {"entity_type": "Playlist", "selected_ids": "501", "ids": "501,502", "title": "Playlists"}


class FakeSite:
    """A page server standing in for a ShotGrid site: ``pages[path]`` is served as HTML."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0], "<p>not here</p>").encode()
                self.send_response(200 if self.path.split("?")[0] in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"

    def overlay_page(self, path: str, action_url: str, fields: dict[str, str]) -> str:
        """A page like ShotGrid's with an overlay: an iframe, and a form posting the AMI payload into it."""
        hidden = "".join(f"<input type=hidden name='{k}' value='{html.escape(v)}'>" for k, v in fields.items())
        self.pages[path] = (
            "<!doctype html><title>ShotGrid</title><h1>Sequences</h1>"
            f"<form id=ami method=post target=overlay action='{html.escape(action_url)}'>{hidden}</form>"
            "<iframe name=overlay id=overlay style='width:900px;height:600px'></iframe>"
        )
        return self.origin + path

    def framing_page(self, path: str, src: str) -> str:
        self.pages[path] = (
            f"<!doctype html><title>ShotGrid</title><iframe name=overlay id=overlay src='{src}'></iframe>"
        )
        return self.origin + path


@contextmanager
def fake_site() -> Iterator[FakeSite]:
    site = FakeSite()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()
        thread.join(10)


def frame_refusal(message: Any) -> bool:
    """Chromium's console error for a frame blocked by CSP frame-ancestors (its wording changed over versions:
    "Refused to frame ..." before, "Framing ... violates ... The request has been blocked." since)."""
    text = str(message.text)
    return message.type == "error" and "frame-ancestors" in text and ("Refused to frame" in text or "blocked" in text)


def blocked_overlay(frame: Any) -> bool:
    """The overlay frame showing Chromium's error page instead of what it was sent to."""
    return frame.name == "overlay" and str(frame.url).startswith("chrome-error://")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_action_pages_render_in_a_shotgrid_overlay_and_nowhere_else(browser: Browser, tmp_path: Path) -> None:
    expect = playwright_sync.expect
    ARTIFACTS.mkdir(exist_ok=True)
    steps = Steps(2)
    sync = Action("loco.client-review-sync", "Client Review Sync", steps.handler, background=True)
    actions = {**load_actions(EXAMPLES), sync.identifier: sync}
    store = SqliteStore(tmp_path / "tw.db")
    backend = Backend.for_store(store)
    launched = browser
    with ExitStack() as stack:
        shotgrid = stack.enter_context(fake_site())  # [shotgrid] site
        legacy = stack.enter_context(fake_site())  # [web] frame_ancestors: the site's other address
        stranger = stack.enter_context(fake_site())  # neither
        settings = HostedActionsSettings(shotgrid_token=SG_TOKEN, job_heartbeat=0.5)
        web = web_settings(frame_ancestors=(legacy.origin,))
        app: FastAPI = build_app(
            backend, web, actions=actions, action_settings=settings, shotgrid_site=shotgrid.origin + "/"
        )
        cookies_seen: list[str] = []

        @app.middleware("http")
        async def record_cookies(request: Request, call_next: RequestResponseEndpoint) -> Response:
            if request.url.path.startswith("/actions/"):
                cookies_seen.append(request.headers.get("cookie", ""))
            return await call_next(request)

        try:
            server = stack.enter_context(serve_app(app))
            context = launched.new_context(viewport={"width": 1000, "height": 700})
            stack.callback(context.close)
            page = context.new_page()
            page.set_default_timeout(20_000)

            # the artist is also logged in to the dashboard in this browser: its cookie is SameSite=Strict
            page.goto(server.url + "/login")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(server.url + "/")
            assert any(c["name"] == COOKIE and c["sameSite"] == "Strict" for c in context.cookies())

            # 1. a form action, from the ShotGrid site: the form, then the result, inside the overlay
            action = f"{server.url}/actions/shotgrid/loco.batch-create-shots?token={SG_TOKEN}"
            page.goto(shotgrid.overlay_page("/sequences", action, SEQUENCE))
            page.evaluate("document.getElementById('ami').submit()")
            overlay = page.frame_locator("#overlay")
            expect(overlay.locator("h1")).to_have_text("Batch Create")
            assert page.url == shotgrid.origin + "/sequences", "the ShotGrid page stays; only the frame changed"
            overlay.locator("input[name='value.pattern']").fill("SQ88_{:04d}")
            overlay.locator("input[name='value.first']").fill("10")
            overlay.locator("input[name='value.last']").fill("30")
            overlay.locator("button[type=submit]").click()
            expect(overlay.locator("p.result")).to_have_text("would create 3 shots: SQ88_0010, SQ88_0020, SQ88_0030")
            page.screenshot(path=str(ARTIFACTS / "action-overlay-form.png"))

            # 2. a background action, from the site's other address: its job page polls inside the overlay
            action = f"{server.url}/actions/shotgrid/loco.client-review-sync?token={SG_TOKEN}"
            page.goto(legacy.overlay_page("/playlists", action, PLAYLIST))
            page.evaluate("document.getElementById('ami').submit()")
            expect(overlay.locator("#job-state")).to_have_text("running")
            expect(overlay.locator("#job-message")).to_have_text("uploading item 1 of 2")
            frame = page.frame(name="overlay")
            assert frame is not None and re.search(r"/actions/jobs/[0-9a-f]{32}\?key=", frame.url), frame and frame.url
            steps.gates[0].set()
            expect(overlay.locator("#job-percent")).to_have_text("50%")  # htmx polled the progress part
            steps.gates[1].set()
            expect(overlay.locator("#job-state")).to_have_text("succeeded")
            expect(overlay.locator("#job-result")).to_have_text("review session 501 synced: 2 items")
            page.screenshot(path=str(ARTIFACTS / "action-overlay-job.png"))

            # the framed pages worked with the URL token, the form ticket and the job key: no cookie reached them
            assert len(cookies_seen) >= 5
            assert not [c for c in cookies_seen if COOKIE in c], cookies_seen

            # 3. a site that is not allowed: Chromium refuses to render the page in its frame
            action = f"{server.url}/actions/shotgrid/loco.batch-create-shots?token={SG_TOKEN}"
            page.goto(stranger.overlay_page("/sequences", action, SEQUENCE))
            posts_before = len(cookies_seen)
            with (
                page.expect_event("framenavigated", blocked_overlay),
                page.expect_console_message(frame_refusal) as refused,
            ):
                page.evaluate("document.getElementById('ami').submit()")
            refusal = refused.value.text
            assert f"frame-ancestors 'self' {shotgrid.origin} {legacy.origin}" in refusal, refusal
            expect(overlay.locator("input[name='value.pattern']")).to_have_count(0)  # the form was not rendered
            expect(overlay.locator("body")).not_to_contain_text("Batch Create")
            page.screenshot(path=str(ARTIFACTS / "action-overlay-refused.png"))
            # what the header does not do: the post itself reached Trackwire (the URL token guards running
            # an action; frame-ancestors only keeps the answer from being shown inside that site's page)
            assert len(cookies_seen) == posts_before + 1

            # 4. the dashboard is never framed, not even by the ShotGrid site
            with (
                page.expect_event("framenavigated", blocked_overlay),
                page.expect_console_message(frame_refusal) as refused,
            ):
                page.goto(shotgrid.framing_page("/dashboard", server.url + "/login"))
            assert "frame-ancestors 'none'" in refused.value.text, refused.value.text
            expect(overlay.locator("input[name=password]")).to_have_count(0)
        finally:
            for gate in steps.gates:
                gate.set()
            stack.close()
            backend.close()
            store.close()
