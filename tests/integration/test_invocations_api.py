"""The invocations list behind the dashboard's Actions page: login required, newest first, paged by key."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.integration.test_actions_hosted import AMI_FIELDS, EXAMPLES
from tests.integration.web_support import TOKEN, web_settings
from trackwire.actions.loading import load_actions
from trackwire.config import HostedActionsSettings
from trackwire.store.memory import MemoryStore
from trackwire.web.app import build_app
from trackwire.web.backend import Backend


def _requests(app: Any, calls: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            return [await client.request(method, path, **kwargs) for method, path, kwargs in calls]

    return asyncio.run(send())


def test_the_invocations_list_needs_a_login_and_pages_newest_first() -> None:
    backend = Backend.for_store(MemoryStore())
    settings = HostedActionsSettings(shotgrid_token="sg-t")
    app = build_app(backend, web_settings(), actions=load_actions(EXAMPLES), action_settings=settings)
    post = {"params": {"token": "sg-t"}, "data": {**dict(AMI_FIELDS), "entity_type": "Version"}}
    auth = {"headers": {"Authorization": f"Bearer {TOKEN}"}}
    runs = _requests(app, [("POST", "/actions/shotgrid/loco.update-rv-component", post)] * 3)
    assert [r.status_code for r in runs] == [200, 200, 200]
    anonymous, first = _requests(app, [("GET", "/api/invocations", {}), ("GET", "/api/invocations?limit=2", auth)])
    assert anonymous.status_code == 401
    page = first.json()
    assert [i["state"] for i in page["items"]] == ["succeeded", "succeeded"] and page["active"] is False
    item = page["items"][0]
    assert item["user"] == "jane.doe" and item["action"] == "loco.update-rv-component"
    assert item["selected"] == [1201, 1202] and item["result"]["success"] is True and "key" not in item
    (second,) = _requests(app, [("GET", f"/api/invocations?limit=2&before={page['next_before']}", auth)])
    rest = second.json()
    assert len(rest["items"]) == 1 and rest["next_before"] is None
    assert rest["items"][0]["seq"] < page["items"][-1]["seq"]
    bad = _requests(app, [("GET", "/api/invocations?before=x", auth), ("GET", "/api/invocations?limit=9999", auth)])
    assert [r.status_code for r in bad] == [400, 400]
    backend.close()
