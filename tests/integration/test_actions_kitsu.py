"""Kitsu custom actions against the real zou: registered through zou's API, posted as Kitsu's web client posts.

The posts are built field for field as cgwire/kitsu's ``src/components/tops/ActionPanel.vue`` builds
them (the hidden form of a custom action with ``is_ajax`` false, the JSON of ``runCustomAction`` with
``is_ajax`` true, sent by ``customactions.js``'s ``postCustomAction``), filled with the real data of
the real zou: the logged-in person, a real production, real shot tasks. They are sent over HTTP to
the URL zou stores for the custom action, served by a real uvicorn. What is not run here is Kitsu's
Vue web client itself (it is not part of zou's package): the browser test submits the same form markup
from Chromium instead.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import skip_or_fail
from tests.integration.kitsu_server import KitsuServer, boot, unique
from tests.integration.web_support import serve_app
from trackwire.actions.hosted import Action, Invocation, Outcome
from trackwire.actions.loading import load_actions
from trackwire.config import HostedActionsSettings
from trackwire.store.memory import MemoryStore
from trackwire.web.actions import INVOKED_TYPE, actions_router
from trackwire.web.backend import Backend

pytestmark = pytest.mark.needs_server

gazu = pytest.importorskip("gazu")

EXAMPLES = Path(__file__).parents[2] / "examples" / "actions"
CHROMIUM = Path("/usr/bin/chromium")
FORM = "application/x-www-form-urlencoded"
TOKEN = "kitsu-5d1e9a"  # [hosted_actions] kitsu_token: Kitsu carries it in the URL zou stores
SETTINGS = HostedActionsSettings(kitsu_token=TOKEN)


@dataclass
class Production:
    kitsu: KitsuServer
    client: Any
    person: dict[str, Any]
    project: dict[str, Any]
    shots: list[dict[str, Any]]
    tasks: list[dict[str, Any]]


@pytest.fixture(scope="module")
def production() -> Production:
    kitsu = boot()
    client = kitsu.client()
    person = gazu.client.get_current_user(client=client)
    project = gazu.project.new_project(unique("Actions"), production_type="featurefilm", client=client)
    sequence = gazu.shot.new_sequence(project, "SQ01", client=client)
    kind = gazu.task.get_task_type_by_name("Animation", client=client)
    shots = [gazu.shot.new_shot(project, sequence, name, client=client) for name in ("SH010", "SH020")]
    tasks = [gazu.task.new_task(shot, kind, client=client) for shot in shots]
    return Production(kitsu, client, person, project, shots, tasks)


class Served:
    """Trackwire's action endpoints on a real port, with a test action that looks the selection up in zou."""

    def __init__(self, production: Production) -> None:
        self.store = MemoryStore()
        self.seen: list[Invocation] = []
        lock = threading.Lock()
        kitsu = production.kitsu

        def describe_tasks(inv: Invocation) -> Outcome:
            client = kitsu.client()  # the handler runs in a thread of its own: its own gazu session
            with lock:
                self.seen.append(inv)
            found = [gazu.task.get_task(task_id, client=client) for task_id in inv.selected]
            names = [f"{t['entity']['name']} {t['task_type']['name']}" for t in found]
            return Outcome(True, "tasks: " + ", ".join(names))

        actions = dict(load_actions(EXAMPLES))
        actions["tw.describe-tasks"] = Action(
            "tw.describe-tasks", "Describe tasks", describe_tasks, entity_types=("Task",), selection="many"
        )
        app = FastAPI()
        backend = Backend.for_store(self.store)
        app.state.backend = backend
        app.include_router(actions_router(backend, actions, settings=SETTINGS))
        self.app = app

    def invocations(self) -> list[dict[str, Any]]:
        return [r.event.data for r in self.store.read_after(0, 100) if r.event.type == INVOKED_TYPE]

    def recorded(self) -> list[Any]:
        return [r.event for r in self.store.read_after(0, 100) if r.event.type == INVOKED_TYPE]


@pytest.fixture
def served(production: Production) -> Iterator[tuple[Served, str]]:
    served = Served(production)
    with serve_app(served.app) as server:
        yield served, server.url


def register(production: Production, url: str, *, is_ajax: bool, entity_type: str = "shot") -> dict[str, Any]:
    """Create the custom action through zou's API, then read it back the way Kitsu's web client gets it."""
    data = {"name": unique("Trackwire"), "url": url, "entity_type": entity_type, "is_ajax": is_ajax}
    created = gazu.client.create("custom-actions", data, client=production.client)
    context = gazu.client.get("data/user/context", client=production.client)
    (listed,) = [a for a in context["custom_actions"] if a["id"] == created["id"]]
    return dict(listed)


def kitsu_form(production: Production, tasks: list[dict[str, Any]], entity_type: str = "shot") -> list[tuple[str, str]]:
    """The hidden inputs of ActionPanel.vue's custom-action form, with the real person, production and tasks.

    ``selection`` is bound to the array of selected task ids: an input's value is the array joined with commas.
    """
    project_id = production.project["id"]
    return [
        ("personid", production.person["id"]),
        ("personemail", production.person["email"]),
        ("projectid", project_id),
        ("currentpath", f"/productions/{project_id}/shots"),
        ("currentserver", urlsplit(production.kitsu.url).netloc),
        ("selection", ",".join(t["id"] for t in tasks)),
        ("entitytype", entity_type),
    ]


def kitsu_json(production: Production, tasks: list[dict[str, Any]], entity_type: str = "shot") -> dict[str, Any]:
    """``runCustomAction``'s ``data`` (is_ajax true), posted as JSON by superagent."""
    project_id = production.project["id"]
    return {
        "entitytype": entity_type,
        "originurl": f"/productions/{project_id}/shots",
        "originserver": urlsplit(production.kitsu.url).netloc,
        "selection": [t["id"] for t in tasks],
        "productionid": project_id,
        "userid": production.person["id"],
        "useremail": production.person["email"],
    }


def test_a_custom_action_registered_in_zou_runs_from_kitsus_form_post_with_the_real_selection(
    production: Production, served: tuple[Served, str]
) -> None:
    app, base = served
    action = register(production, f"{base}/actions/kitsu/tw.describe-tasks?token={TOKEN}", is_ajax=False)
    assert action["url"] == f"{base}/actions/kitsu/tw.describe-tasks?token={TOKEN}" and action["is_ajax"] is False
    answer = httpx.post(action["url"], data=dict(kitsu_form(production, production.tasks)), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")  # Kitsu opens it in a new tab
    assert "tasks: SH010 Animation, SH020 Animation" in answer.text
    (inv,) = app.seen
    assert inv.selected == tuple(t["id"] for t in production.tasks)
    assert (inv.entity_type, inv.payload["entitytype"]) == ("Task", "shot")
    (event,) = app.recorded()
    assert event.entity is not None and (event.entity.type, event.entity.id) == ("Task", production.tasks[0]["id"])
    assert event.user is not None and event.user.id == production.person["id"]
    assert event.user.name == production.person["email"]
    assert event.project is not None and event.project.id == production.project["id"]
    assert event.data["selected"] == [t["id"] for t in production.tasks]
    assert event.data["result"] == {"success": True, "message": "tasks: SH010 Animation, SH020 Animation"}


def test_an_ajax_custom_action_runs_from_kitsus_json_post(production: Production, served: tuple[Served, str]) -> None:
    app, base = served
    url = f"{base}/actions/kitsu/tw.describe-tasks?token={TOKEN}"
    action = register(production, url, is_ajax=True, entity_type="all")
    assert action["is_ajax"] is True
    answer = httpx.post(action["url"], json=kitsu_json(production, production.tasks[1:]), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "message": "tasks: SH020 Animation"}
    (recorded,) = app.invocations()
    assert recorded["selected"] == [production.tasks[1]["id"]]
    assert recorded["user"] == {"id": production.person["id"], "login": production.person["email"]}
    assert recorded["project_id"] == production.project["id"] and recorded["payload"]["originserver"]


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.form_action = ""
        self.inputs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.form_action = values.get("action", "")
        elif tag == "input" and values.get("type") == "hidden":
            self.inputs.append((values["name"], values.get("value", "")))


def test_a_form_action_answers_kitsus_post_with_our_form_which_posts_back_and_runs(
    production: Production, served: tuple[Served, str]
) -> None:
    app, base = served
    action = register(production, f"{base}/actions/kitsu/loco.upload-media?token={TOKEN}", is_ajax=False)
    task = production.tasks[0]
    first = httpx.post(action["url"], data=dict(kitsu_form(production, [task])), timeout=30)
    assert first.status_code == 200 and "name='value.path'" in first.text
    assert app.invocations() == []  # nothing ran yet
    parsed = _Inputs()
    parsed.feed(first.text)
    assert parsed.form_action == "/actions/kitsu/loco.upload-media"  # back with a form ticket, never the token
    assert "trackwire_ticket" in dict(parsed.inputs) and TOKEN not in first.text
    assert dict(parsed.inputs)["selection"] == task["id"] and dict(parsed.inputs)["submitted"] == "1"
    body = urlencode([*parsed.inputs, ("value.path", "/dailies/sh010_v003.mov")])
    back = httpx.post(base + parsed.form_action, content=body, headers={"content-type": FORM}, timeout=30)
    assert back.status_code == 200, back.text
    assert f"/dailies/sh010_v003.mov queued for dailies review on task {task['id']}" in back.text
    (recorded,) = app.invocations()
    assert recorded["values"]["path"] == "/dailies/sh010_v003.mov" and recorded["selected"] == [task["id"]]


def test_posts_that_are_not_kitsus_get_400_never_500(production: Production, served: tuple[Served, str]) -> None:
    app, base = served
    url = f"{base}/actions/kitsu/tw.describe-tasks?token={TOKEN}"
    form = dict(kitsu_form(production, production.tasks))
    answers = [
        httpx.post(url, data={**form, "selection": "sh010"}, timeout=30),  # not task ids
        httpx.post(url, data={k: v for k, v in form.items() if k != "personid" and k != "personemail"}, timeout=30),
        httpx.post(url, data={k: v for k, v in form.items() if k != "entitytype"}, timeout=30),
        httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}, timeout=30),
        httpx.post(url, json=[form["selection"]], timeout=30),
        httpx.post(url, json={**kitsu_json(production, production.tasks), "selection": 7}, timeout=30),
    ]
    assert [a.status_code for a in answers] == [400] * 6
    without_token = httpx.post(url.split("?")[0], data=form, timeout=30)
    assert without_token.status_code == 401 and "token" in without_token.text
    assert "UUID" in answers[0].text and answers[3].json()["error"] == "the body is not JSON"
    assert app.invocations() == [] and app.seen == []


def test_a_user_submits_kitsus_custom_action_form_in_chromium_and_fills_our_form(
    production: Production, served: tuple[Served, str]
) -> None:
    if not CHROMIUM.exists():
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    playwright_sync = pytest.importorskip("playwright.sync_api")
    app, base = served
    action = register(production, f"{base}/actions/kitsu/loco.upload-media?token={TOKEN}", is_ajax=False)
    task = production.tasks[1]
    hidden = "".join(
        f"<input type='hidden' id='{k}' name='{k}' value='{html.escape(v)}'>" for k, v in kitsu_form(production, [task])
    )
    # ActionPanel.vue's markup for a non-ajax custom action: a form opening its answer in a new tab
    markup = (
        f"<form target='_blank' method='POST' action='{html.escape(action['url'])}'>{hidden}"
        "<button class='button is-wide' type='submit'>Run for the selected task</button></form>"
    )
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(20_000)
            page.set_content(markup)
            with page.expect_popup() as opened:
                page.click("button[type=submit]")
            tab = opened.value
            tab.set_default_timeout(20_000)
            playwright_sync.expect(tab.locator("h1")).to_have_text("Upload Media")
            tab.fill("input[name='value.path']", "/dailies/sh020_v001.mov")
            tab.click("button[type=submit]")
            playwright_sync.expect(tab.locator("p.result")).to_contain_text(
                f"/dailies/sh020_v001.mov queued for dailies review on task {task['id']}"
            )
        finally:
            browser.close()
    (recorded,) = app.invocations()
    assert recorded["selected"] == [task["id"]] and recorded["user"]["id"] == production.person["id"]


# What superagent does for `.post(url).withCredentials().send(data)` in a browser: an XMLHttpRequest
# with credentials and a JSON body (so the browser sends a CORS preflight first).
KITSU_PAGE = """<!doctype html><html><body><script>
window.postCustomAction = (url, data) => new Promise(resolve => {
  const xhr = new XMLHttpRequest()
  xhr.open('POST', url)
  xhr.withCredentials = true
  xhr.setRequestHeader('Content-Type', 'application/json')
  xhr.onload = () => resolve({status: xhr.status, body: xhr.responseText})
  xhr.onerror = () => resolve({status: 0, body: 'blocked by the browser'})
  xhr.send(JSON.stringify(data))
})
</script></body></html>"""


def test_an_ajax_custom_action_posted_from_kitsus_origin_passes_the_browsers_cors_check_in_chromium(
    production: Production,
) -> None:
    if not CHROMIUM.exists():
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    playwright_sync = pytest.importorskip("playwright.sync_api")
    from fastapi.responses import HTMLResponse

    from trackwire.web.kitsu_cors import KitsuActionCors

    kitsu_page = FastAPI()  # stands in for Kitsu's web client: another origin than Trackwire's
    kitsu_page.state.backend = Backend.for_store(MemoryStore())
    kitsu_page.get("/")(lambda: HTMLResponse(KITSU_PAGE))
    allowed: list[str] = []
    app = Served(production)
    app.app.add_middleware(KitsuActionCors, origins=lambda: allowed)
    with serve_app(kitsu_page) as page_server, serve_app(app.app) as trackwire:
        action = register(production, f"{trackwire.url}/actions/kitsu/tw.describe-tasks?token={TOKEN}", is_ajax=True)
        data = kitsu_json(production, production.tasks)
        with playwright_sync.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
            )
            try:
                page = browser.new_context().new_page()
                page.goto(page_server.url + "/")
                refused = page.evaluate("([url, data]) => postCustomAction(url, data)", [action["url"], data])
                assert app.invocations() == []  # the preflight was refused: the POST was never sent
                allowed.append(page_server.url)
                answer = page.evaluate("([url, data]) => postCustomAction(url, data)", [action["url"], data])
            finally:
                browser.close()
    assert refused == {"status": 0, "body": "blocked by the browser"}
    assert answer["status"] == 200, answer
    assert answer["body"] == '{"success":true,"message":"tasks: SH010 Animation, SH020 Animation"}'
    (recorded,) = app.invocations()
    assert recorded["selected"] == [t["id"] for t in production.tasks]
