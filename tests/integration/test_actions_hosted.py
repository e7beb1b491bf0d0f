"""Hosted actions over HTTP: ShotGrid action menu items (full and light payload) and Kitsu custom actions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.fakes.shotgrid_server import FakeShotgrid
from trackwire.actions.loading import load_actions
from trackwire.config import HostedActionsSettings, ShotgridSettings
from trackwire.store.memory import MemoryStore
from trackwire.web.actions import INVOKED_TYPE, _shotgrid_reader, actions_router
from trackwire.web.backend import Backend

EXAMPLES = Path(__file__).parents[2] / "examples" / "actions"

# What ShotGrid posts for an action menu item on a Shot page (form-encoded, `cols` repeated).
AMI_FIELDS: list[tuple[str, str]] = [
    ("entity_type", "Shot"),
    ("selected_ids", "1201,1202"),
    ("ids", "1201,1202,1203"),
    ("project_id", "70"),
    ("project_name", "Moonfall"),
    ("user_id", "42"),
    ("user_login", "jane.doe"),
    ("title", "Shots"),
    ("cols", "code"),
    ("cols", "sg_status_list"),
    ("column_display_names", "Shot Code"),
    ("column_display_names", "Status"),
    ("sort_column", "code"),
    ("sort_direction", "asc"),
    ("session_uuid", "5a8e4f0c-1b2c-11ef-9a7e-0242ac120003"),
    ("server_hostname", "locovfx.shotgrid.autodesk.com"),
]


SG_TOKEN, KITSU_TOKEN = "sg-7f3a9c", "kitsu-2b8e1d"
TOKENS = HostedActionsSettings(shotgrid_token=SG_TOKEN, kitsu_token=KITSU_TOKEN)


class Client:
    """The action routes over ASGI; posts carry the tracker's ``?token=`` unless ``token`` says otherwise."""

    def __init__(self, store: MemoryStore, settings: HostedActionsSettings = TOKENS, **router: Any) -> None:
        app = FastAPI()
        app.include_router(
            actions_router(Backend.for_store(store), load_actions(EXAMPLES), settings=settings, **router)
        )
        self.app = app

    def post(self, path: str, *, token: str | None = "", **kwargs: Any) -> httpx.Response:
        if token == "":
            token = SG_TOKEN if path.startswith("/actions/shotgrid/") else KITSU_TOKEN
        if token is not None:
            kwargs["params"] = {"token": token}

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
                return await client.post(path, **kwargs)

        return asyncio.run(send())


def _invocations(store: MemoryStore) -> list[dict[str, Any]]:
    return [r.event.data for r in store.read_after(0, 100) if r.event.type == INVOKED_TYPE]


def test_an_ami_post_without_a_form_runs_and_answers_with_a_result_page() -> None:
    store = MemoryStore()
    fields = [(k, "Version" if k == "entity_type" else v) for k, v in AMI_FIELDS]
    response = Client(store).post("/actions/shotgrid/loco.update-rv-component", data=dict(fields))
    assert response.status_code == 200, response.text
    assert "movie component added to version(s) 1201, 1202" in response.text
    (recorded,) = _invocations(store)
    assert recorded["user"] == {"id": 42, "login": "jane.doe"}
    assert recorded["selected"] == [1201, 1202] and recorded["entity_type"] == "Version"
    assert recorded["result"] == {"success": True, "message": "movie component added to version(s) 1201, 1202"}


def test_a_form_action_answers_with_a_form_then_runs_with_the_submitted_values() -> None:
    store = MemoryStore()
    client = Client(store)
    first = client.post(
        "/actions/shotgrid/loco.batch-create-shots",
        content=httpx.QueryParams(tuple(AMI_FIELDS)).__str__(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert first.status_code == 200
    assert "name='value.pattern'" in first.text and "name='selected_ids' value='1201,1202'" in first.text
    assert _invocations(store) == []
    submitted = [
        *AMI_FIELDS,
        ("submitted", "1"),
        ("value.pattern", "MF_{:04d}"),
        ("value.first", "10"),
        ("value.last", "30"),
        ("value.step", "10"),
    ]
    second = client.post(
        "/actions/shotgrid/loco.batch-create-shots",
        content=str(httpx.QueryParams(tuple(submitted))),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert second.status_code == 200
    assert "would create 3 shots: MF_0010, MF_0020, MF_0030" in second.text
    (recorded,) = _invocations(store)
    assert recorded["values"] == {"pattern": "MF_{:04d}", "first": 10, "last": 30, "step": 10}
    assert recorded["payload"]["cols"] == ["code", "sg_status_list"]


def test_malformed_ami_posts_are_answered_400_never_500() -> None:
    store = MemoryStore()
    client = Client(store)
    url = "/actions/shotgrid/loco.batch-create-shots"
    cases: list[dict[str, Any]] = [
        {"data": {}},
        {"data": {"entity_type": "Shot"}},
        {"data": {**dict(AMI_FIELDS), "selected_ids": "12,abc"}},
        {"data": {**dict(AMI_FIELDS), "user_id": "jane"}},
        {"data": {**dict(AMI_FIELDS), "entity_type": "HumanUser"}},
        {"data": {**dict(AMI_FIELDS), "submitted": "1", "value.pattern": "x", "value.first": "ten", "value.last": "1"}},
        {"content": b"\xff\xfe not a form", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        {"content": b"{}", "headers": {"content-type": "application/json"}},
    ]
    statuses = [client.post(url, **case).status_code for case in cases]
    assert statuses == [400] * len(cases)
    assert client.post("/actions/shotgrid/no-such-action", data=dict(AMI_FIELDS)).status_code == 404
    assert _invocations(store) == []


def test_a_light_payload_post_is_read_back_from_the_event_log_entry_on_the_shotgrid_server() -> None:
    store = MemoryStore()
    with FakeShotgrid() as sg:
        payload: dict[str, Any] = {}
        for key, value in AMI_FIELDS:
            payload.setdefault(key, []).append(value)
        meta = {"ami_payload": {k: v if len(v) > 1 else v[0] for k, v in payload.items()}}
        entry_id = sg.add_event("Shotgun_ActionMenuItem_Triggered", meta=meta)
        settings = ShotgridSettings(site=sg.url, script_name="trackwire", script_key="secret")
        client = Client(store, shotgrid_reader=_shotgrid_reader(settings))
        response = client.post("/actions/shotgrid/loco.clear-job-queue", data={"event_log_entry_id": str(entry_id)})
        missing = client.post("/actions/shotgrid/loco.clear-job-queue", data={"event_log_entry_id": "999999"})
        replayed = client.post("/actions/shotgrid/loco.clear-job-queue", data={"event_log_entry_id": str(entry_id)})
    assert response.status_code == 200, response.text
    assert replayed.status_code == 409 and f"EventLogEntry {entry_id}) was handled already" in replayed.text
    assert "cleared the pending jobs of jane.doe" in response.text
    assert missing.status_code == 400
    (recorded,) = _invocations(store)
    assert recorded["selected"] == [1201, 1202] and recorded["tracker"] == "shotgrid"


def test_a_light_payload_entry_without_an_ami_payload_is_refused_with_400() -> None:
    store = MemoryStore()
    with FakeShotgrid() as sg:
        # an ordinary EventLogEntry: its meta is an attribute change, not an action menu item's payload
        entry_id = sg.add_event("Shotgun_Shot_Change", meta={"type": "attribute_change", "entity_type": "Shot"})
        settings = ShotgridSettings(site=sg.url, script_name="trackwire", script_key="secret")
        client = Client(store, shotgrid_reader=_shotgrid_reader(settings))
        response = client.post("/actions/shotgrid/loco.clear-job-queue", data={"event_log_entry_id": str(entry_id)})
        not_an_id = client.post("/actions/shotgrid/loco.clear-job-queue", data={"event_log_entry_id": "x"})
    assert response.status_code == 400 and "meta.ami_payload" in response.text
    assert not_an_id.status_code == 400
    assert _invocations(store) == []


def test_a_light_payload_with_the_guides_comma_separated_columns() -> None:
    store = MemoryStore()
    with FakeShotgrid() as sg:
        payload = dict(AMI_FIELDS) | {"cols": "code,sg_status_list", "page_id": "1353", "referrer_path": "/page/1353"}
        entry_id = sg.add_event("Shotgun_ActionMenuItem_Triggered", meta={"ami_payload": payload})
        settings = ShotgridSettings(site=sg.url, script_name="trackwire", script_key="secret")
        client = Client(store, shotgrid_reader=_shotgrid_reader(settings))
        response = client.post("/actions/shotgrid/loco.clear-job-queue", data={"event_log_entry_id": str(entry_id)})
    assert response.status_code == 200, response.text
    (recorded,) = _invocations(store)
    assert recorded["payload"]["cols"] == ["code", "sg_status_list"]
    assert recorded["payload"]["page_id"] == "1353" and recorded["user"] == {"id": 42, "login": "jane.doe"}


TASK = "0e4f8d52-1c5e-4c39-9b8e-6d3a1f2b7c10"
KITSU_JSON = {  # runCustomAction's data in cgwire/kitsu's ActionPanel.vue (is_ajax custom actions)
    "entitytype": "shot",
    "originurl": "/productions/9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d/shots",
    "originserver": "kitsu.locovfx.com",
    "selection": [TASK],
    "productionid": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
    "userid": "3f6b8a2c-9d1e-4f70-8a5b-2c3d4e5f6a7b",
    "useremail": "jane@locovfx.com",
}


def test_a_kitsu_custom_action_runs_from_its_json_post_and_malformed_ones_get_400() -> None:
    """Real-shaped posts without a server; tests/integration/test_actions_kitsu.py posts them for real zou data."""
    store = MemoryStore()
    client = Client(store)
    ok = client.post("/actions/kitsu/loco.upload-media", json={**KITSU_JSON, "values": {"path": "/d/sh0010.mov"}})
    assert ok.status_code == 200
    assert ok.json() == {"success": True, "message": f"/d/sh0010.mov queued for dailies review on task {TASK}"}
    form = client.post("/actions/kitsu/loco.upload-media", json=KITSU_JSON)
    assert [f["name"] for f in form.json()["form"]] == ["path", "note"]
    bad = [
        client.post("/actions/kitsu/loco.upload-media", content=b"{no", headers={"content-type": "application/json"}),
        client.post("/actions/kitsu/loco.upload-media", json=[1, 2]),
        client.post("/actions/kitsu/loco.upload-media", json={**KITSU_JSON, "selection": "x"}),
        client.post("/actions/kitsu/loco.upload-media", data={"selection": TASK}),  # a form without person/type
    ]
    assert [b.status_code for b in bad] == [400, 400, 400, 400]
    assert bad[3].headers["content-type"].startswith("text/html")
    (recorded,) = _invocations(store)
    assert recorded["tracker"] == "kitsu" and recorded["user"]["login"] == "jane@locovfx.com"


def test_the_apps_kitsu_preflight_is_answered_for_kitsu_origins_only() -> None:
    """The dashboard app answers the CORS preflight of an is_ajax custom action for ``kitsu_origins`` only."""
    from trackwire.config import WebSettings
    from trackwire.web.app import build_app

    kitsu = "https://kitsu.locovfx.com"
    settings = HostedActionsSettings(kitsu_token=KITSU_TOKEN, kitsu_origins=(kitsu,))
    backend = Backend.for_store(MemoryStore())
    app = build_app(backend, WebSettings(), actions=load_actions(EXAMPLES), action_settings=settings)
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}

    async def send(method: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            url = "/actions/kitsu/loco.clear-job-queue"
            return await client.request(method, url, params={"token": KITSU_TOKEN}, headers=headers, **kwargs)

    allowed = asyncio.run(send("OPTIONS", {"origin": kitsu} | preflight))
    other = asyncio.run(send("OPTIONS", {"origin": "https://evil.example.com"} | preflight))
    posted = asyncio.run(send("POST", {"origin": kitsu}, json=KITSU_JSON))
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == kitsu
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    assert posted.status_code == 200 and posted.headers["access-control-allow-origin"] == kitsu
