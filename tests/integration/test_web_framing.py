"""The frame headers of the web app: the pages an action menu item opens may be framed by the ShotGrid site
(its "Open in Modal Overlay") and by ``[web] frame_ancestors``; every other page by nobody."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.action_support import SEQUENCE_AMI
from tests.integration.test_actions_hosted import EXAMPLES, SG_TOKEN
from tests.integration.web_support import PASSWORD, TOKEN, web_settings
from trackwire.actions.hosted import Action, Invocation, Outcome
from trackwire.actions.loading import load_actions
from trackwire.config import HostedActionsSettings
from trackwire.store.memory import MemoryStore
from trackwire.web.app import build_app, create_store_app
from trackwire.web.backend import Backend

SITE = "https://studio.shotgrid.autodesk.com/"
LEGACY = "https://studio.shotgunstudio.com"
ALLOWED = "'self' https://studio.shotgrid.autodesk.com https://studio.shotgunstudio.com"
AMI_FIELDS = SEQUENCE_AMI
SETTINGS = HostedActionsSettings(shotgrid_token=SG_TOKEN, job_heartbeat=0.1)


def _quick_sync(inv: Invocation) -> Outcome:
    inv.progress(0.5, "half way")
    return Outcome(True, f"review session {inv.selected[0]} synced")


SYNC = Action("loco.quick-sync", "Quick Sync", _quick_sync, entity_types=("Playlist",), background=True)


def directives(response: httpx.Response) -> dict[str, str]:
    """The response's CSP as {directive: sources}."""
    policy = response.headers["content-security-policy"]
    return {name: rest.strip() for name, _, rest in (d.strip().partition(" ") for d in policy.split(";"))}


def framable_by(response: httpx.Response, sources: str) -> bool:
    """True when the answer lets exactly ``sources`` frame it and sends no X-Frame-Options."""
    return directives(response)["frame-ancestors"] == sources and "x-frame-options" not in response.headers


def framed_by_nobody(response: httpx.Response) -> bool:
    return directives(response)["frame-ancestors"] == "'none'" and response.headers["x-frame-options"] == "DENY"


@pytest.fixture
def app() -> Iterator[FastAPI]:
    backend = Backend.for_store(MemoryStore())
    actions = {**load_actions(EXAMPLES), SYNC.identifier: SYNC}
    settings = web_settings(frame_ancestors=(LEGACY,))
    built = build_app(backend, settings, actions=actions, action_settings=SETTINGS, shotgrid_site=SITE)
    try:
        yield built
    finally:
        backend.close()


def call(app: FastAPI, script: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://trackwire.studio.lan") as client:
            return await script(client)

    return asyncio.run(run())


def test_the_pages_of_a_shotgrid_action_may_be_framed_by_the_site_and_the_configured_origins(app: FastAPI) -> None:
    form_url = "/actions/shotgrid/loco.batch-create-shots"

    async def script(client: httpx.AsyncClient) -> list[httpx.Response]:
        form = await client.post(form_url, params={"token": SG_TOKEN}, data=AMI_FIELDS)
        values = {"value.pattern": "SQ88_{:04d}", "value.first": "10", "value.last": "20", "submitted": "1"}
        result = await client.post(form_url, params={"token": SG_TOKEN}, data={**AMI_FIELDS, **values})
        refused = await client.post(form_url, data=AMI_FIELDS)  # no token: the refusal shows in the overlay too
        unknown = await client.post("/actions/shotgrid/loco.nothing", params={"token": SG_TOKEN}, data=AMI_FIELDS)
        return [form, result, refused, unknown]

    form, result, refused, unknown = call(app, script)
    assert form.status_code == 200 and "value.pattern" in form.text
    assert result.status_code == 200 and "would create 2 shots" in result.text
    assert refused.status_code == 401
    assert unknown.status_code == 404
    for response in (form, result, refused, unknown):
        assert framable_by(response, ALLOWED), response.headers
        policy = directives(response)
        assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'", "only framing is relaxed"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_a_background_actions_redirect_job_page_progress_and_status_may_be_framed_alike(app: FastAPI) -> None:
    playlist = {**AMI_FIELDS, "entity_type": "Playlist", "selected_ids": "501", "ids": "501"}

    async def script(client: httpx.AsyncClient) -> list[httpx.Response]:
        started = await client.post("/actions/shotgrid/loco.quick-sync", params={"token": SG_TOKEN}, data=playlist)
        job_url = started.headers["location"]
        status_url = job_url.replace("?key=", "/status?key=")

        async def finished() -> None:
            while (await client.get(status_url)).json()["state"] != "succeeded":
                await asyncio.sleep(0.02)

        await asyncio.wait_for(finished(), 20)
        page = await client.get(job_url)
        progress = await client.get(job_url.replace("?key=", "/progress?key="))
        status = await client.get(status_url)
        wrong_key = await client.get(job_url.split("?")[0] + "?key=wrong")
        return [started, page, progress, status, wrong_key]

    started, page, progress, status, wrong_key = call(app, script)
    assert started.status_code == 303 and started.headers["location"].startswith("/actions/jobs/")
    assert page.status_code == 200 and "review session 501 synced" in page.text
    assert progress.status_code == 200 and status.json()["state"] == "succeeded"
    assert wrong_key.status_code == 404
    for response in (started, page, progress, status, wrong_key):
        assert framable_by(response, ALLOWED), (response.request.url, response.headers)


def test_the_dashboard_api_login_and_everything_else_may_be_framed_by_nobody(app: FastAPI) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    async def script(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await client.get("/login"),
            await client.get("/", headers=bearer),
            await client.get("/invocations", headers=bearer),
            await client.get("/api/events", headers=bearer),
            await client.get("/healthz"),
            await client.get("/static/app.css"),
            await client.get("/no/such/page", headers={"accept": "text/html"}),
            await client.get("/actionsX/shotgrid/loco.batch-create-shots"),
            await client.post("/actions/kitsu/loco.clear-job-queue", data={}),  # Kitsu opens a tab, not a frame
        ]

    responses = call(app, script)
    assert [r.status_code for r in responses[:6]] == [200, 200, 200, 200, 200, 200]
    for response in responses:
        assert framed_by_nobody(response), (response.request.url, response.headers)


def test_without_a_site_or_origins_the_action_pages_may_be_framed_by_trackwire_only() -> None:
    backend = Backend.for_store(MemoryStore())
    app = build_app(backend, web_settings(), actions=load_actions(EXAMPLES), action_settings=SETTINGS)

    async def script(client: httpx.AsyncClient) -> list[httpx.Response]:
        url = "/actions/shotgrid/loco.batch-create-shots"
        return [await client.post(url, params={"token": SG_TOKEN}, data=AMI_FIELDS), await client.get("/login")]

    try:
        action, login = call(app, script)
    finally:
        backend.close()
    assert action.status_code == 200 and framable_by(action, "'self'")
    assert framed_by_nobody(login)


def test_trackwire_web_frames_the_job_pages_for_the_site_it_is_given() -> None:
    store = MemoryStore()
    app = create_store_app(store, web_settings(), shotgrid_site="https://studio.shotgrid.autodesk.com")

    async def script(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/actions/jobs/0123456789abcdef0123456789abcdef", params={"key": "nope"})

    try:
        missing = call(app, script)
    finally:
        app.state.backend.close()
    assert missing.status_code == 404
    assert framable_by(missing, "'self' https://studio.shotgrid.autodesk.com")


def test_the_dashboard_login_cookie_stays_samesite_strict_so_it_never_reaches_a_shotgrid_frame(app: FastAPI) -> None:
    async def script(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/login", data={"username": "admin", "password": PASSWORD, "next": "/"})

    login = call(app, script)
    assert login.status_code == 303
    cookie = login.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "httponly" in cookie
    assert framed_by_nobody(login)


def test_a_job_page_is_shown_with_its_key_alone_without_any_cookie(app: FastAPI) -> None:
    """What a cross-site frame can present: the link's key, no session cookie."""
    playlist = {**AMI_FIELDS, "entity_type": "Playlist", "selected_ids": "502", "ids": "502"}

    async def script(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        started = await client.post("/actions/shotgrid/loco.quick-sync", params={"token": SG_TOKEN}, data=playlist)
        job_url = started.headers["location"]
        assert not client.cookies
        return await client.get(job_url), await client.get(job_url.split("?")[0])

    with_key, without = call(app, script)
    assert with_key.status_code == 200 and "loco.quick-sync" in with_key.text
    assert without.status_code == 401
