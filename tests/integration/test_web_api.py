"""The JSON API against a real SQLite store, served by uvicorn: every endpoint, auth, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.web_support import PASSWORD, TOKEN, RunningServer, fill_store, serve_app, web_settings
from trackwire.store.sqlite import SqliteStore
from trackwire.web.app import create_store_app


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = fill_store(tmp_path / "web.db")
    yield s
    s.close()


@pytest.fixture
def server(store: SqliteStore) -> Iterator[RunningServer]:
    with serve_app(create_store_app(store, web_settings())) as running:
        yield running


READS = [
    "/api/overview",
    "/api/events",
    "/api/events/1",
    "/api/groups",
    "/api/groups/notify",
    "/api/deadletters",
    "/api/deadletters/notify/5",
    "/metrics",
    "/",
    "/events",
    "/events/1",
    "/groups",
    "/groups/notify",
    "/deadletters",
    "/deadletters/notify/5",
    "/live/overview",
]
WRITES = [
    "/api/groups/notify/reactivate",
    "/api/groups/notify/replay",
    "/api/deadletters/notify/5/replay",
    "/api/deadletters/notify/5/discard",
    "/api/deadletters/notify/replay",
    "/api/deadletters/notify/discard",
    "/groups/notify/reactivate",
    "/groups/notify/replay",
    "/deadletters/notify/5/replay",
    "/deadletters/notify/5/discard",
    "/deadletters/notify/replay",
    "/deadletters/notify/discard",
]


def test_health_needs_no_login_but_everything_else_does(server: RunningServer) -> None:
    anonymous = server.client(token=None)
    assert anonymous.get("/healthz").json()["status"] == "ok"
    assert anonymous.get("/readyz").status_code == 200
    for path in READS:
        response = anonymous.get(path, follow_redirects=False)
        if path.startswith(("/api", "/metrics")):
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
        else:
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=")
    for path in WRITES:
        assert anonymous.post(path, follow_redirects=False).status_code in (401, 303), path


def test_a_wrong_token_is_refused_and_never_echoed(server: RunningServer) -> None:
    response = server.client(token="not-" + TOKEN).get("/api/overview")
    assert response.status_code == 401
    assert TOKEN not in response.text


def test_every_read_endpoint_answers_with_a_token(server: RunningServer) -> None:
    client = server.client()
    for path in READS:
        if path == "/live/overview":
            continue  # an endless stream: tested on its own
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])


def test_the_overview_shows_groups_sources_failures_and_the_chart(server: RunningServer) -> None:
    o = server.client().get("/api/overview").json()
    assert o["mode"] == "standalone"
    assert o["last_event"] == 120
    assert o["events_last_hour"] == 120
    assert len(o["chart"]) == 60
    assert sum(bar["count"] for bar in o["chart"]) == 120
    groups = {g["name"]: g for g in o["groups"]}
    assert groups["notify"]["deliveries"]["dead"] == 1
    assert groups["notify"]["deliveries"]["retry"] == 1
    assert groups["audit"]["lag"] == 70
    assert o["dead_letters"] == 1
    assert o["failures_last_hour"] == 2
    assert {f["event_id"] for f in o["failures"]} == {5, 6}
    assert [s["name"] for s in o["sources"]] == ["shotgrid:studio"]
    assert o["sources"][0]["cursor"] == {"last_id": 120}


def test_events_filter_by_source_type_entity_and_project_and_page_by_key(server: RunningServer) -> None:
    client = server.client()
    page = client.get("/api/events", params={"entity": "Shot:1002", "limit": 10}).json()
    ids = [e["id"] for e in page["items"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 10
    assert all(e["entity"] == "Shot:1002" for e in page["items"])
    rest = client.get("/api/events", params={"entity": "Shot:1002", "limit": 10, "before": page["next_before"]})
    more = [e["id"] for e in rest.json()["items"]]
    assert more and max(more) < min(ids)
    assert set(ids).isdisjoint(more)
    by_type = client.get("/api/events", params={"type": "Shotgun_Version_New", "limit": 500}).json()["items"]
    assert len(by_type) == 40 and {e["type"] for e in by_type} == {"Shotgun_Version_New"}
    by_source = client.get("/api/events", params={"source": "kitsu:main", "limit": 500}).json()["items"]
    assert len(by_source) == 60
    by_project = client.get("/api/events", params={"project": "Project:71", "limit": 500}).json()["items"]
    assert [e["id"] for e in by_project] == list(range(120, 99, -1))
    both = client.get("/api/events", params={"project": "71", "source": "kitsu:main", "limit": 500}).json()
    assert {e["id"] for e in both["items"]} == {i for i in range(100, 121) if i % 2 == 0}
    assert both["sources"] == ["kitsu:main", "shotgrid:studio"]


def test_a_time_range_selects_events_by_when_they_were_received(server: RunningServer) -> None:
    client = server.client()
    received = client.get("/api/events/60").json()["summary"]["received"]
    after = client.get("/api/events", params={"since": received, "limit": 500}).json()["items"]
    assert min(e["id"] for e in after) <= 60
    naive = client.get("/api/events", params={"since": received[:19], "limit": 500}).json()["items"]
    assert 60 in {e["id"] for e in naive}  # a time without a zone is taken as UTC
    future = client.get("/api/events", params={"since": "2999-01-01T00:00:00+00:00"}).json()["items"]
    assert future == []
    past = client.get("/api/events", params={"until": "2000-01-01T00:00:00+00:00"}).json()["items"]
    assert past == []


def test_an_event_page_says_what_each_group_did(server: RunningServer) -> None:
    client = server.client()
    fates = {f["group"]: f for f in client.get("/api/events/5").json()["fates"]}
    assert fates["notify"]["state"] == "dead"
    assert fates["notify"]["error"] == "KeyError: 'sg_status'"
    assert fates["audit"]["state"] == "done"
    retrying = {f["group"]: f for f in client.get("/api/events/6").json()["fates"]}
    assert retrying["notify"]["state"] == "retrying" and retrying["notify"]["attempts"] == 2
    late = {f["group"]: f for f in client.get("/api/events/80").json()["fates"]}
    assert late["audit"]["state"] == "not yet reached"
    assert client.get("/api/events/99999").status_code == 404


def test_a_group_page_shows_its_last_error_with_traceback(server: RunningServer) -> None:
    g = server.client().get("/api/groups/notify").json()
    assert g["last_error"] in ("KeyError: 'sg_status'", "TimeoutError: slow")
    assert {r["event_id"] for r in g["rows"]} == {5, 6}
    assert server.client().get("/api/groups/nope").status_code == 404


def test_dead_letters_can_be_replayed_and_discarded_with_a_token(server: RunningServer, store: SqliteStore) -> None:
    client = server.client()
    listing = client.get("/api/deadletters").json()
    assert [(d["group"], d["event_id"]) for d in listing["items"]] == [("notify", 5)]
    assert client.get("/api/deadletters/notify/5").json()["traceback"] == "Trace\n  x"
    assert client.post("/api/deadletters/notify/5/replay").json() == {"changed": 1}
    assert [r.state.value for r in store.load_rows("notify") if r.event_id == 5] == ["pending"]
    assert client.get("/api/deadletters/notify/5").status_code == 404
    assert client.post("/api/deadletters/nope/5/replay").status_code == 404


def test_discard_all_and_replay_a_range(server: RunningServer, store: SqliteStore) -> None:
    client = server.client()
    assert client.post("/api/deadletters/notify/discard").json() == {"changed": 1}
    assert client.get("/api/deadletters").json()["items"] == []
    replayed = client.post("/api/groups/audit/replay", json={"first": 10, "last": 19}).json()
    assert replayed == {"changed": 10}
    assert sorted(r.event_id for r in store.load_rows("audit")) == list(range(10, 20))
    assert client.post("/api/groups/audit/replay", json={"first": 0}).status_code == 422


def test_reactivate_writes_the_state_a_daemon_picks_up(server: RunningServer, store: SqliteStore) -> None:
    store.set_group_state("audit", "deactivated", "event 3: boom")
    client = server.client()
    assert client.get("/api/groups/audit").json()["state"] == "deactivated"
    assert client.post("/api/groups/audit/reactivate").json()["state"] == "active"
    record = store.get_group("audit")
    assert record is not None and record.state == "active" and record.reason is None


def test_a_cookie_login_must_send_the_csrf_token_to_change_anything(server: RunningServer, store: SqliteStore) -> None:
    browser = server.login()
    assert browser.get("/api/overview").status_code == 200
    for path in WRITES:
        refused = browser.post(path, data={"first": "1"})
        assert refused.status_code == 403, path
        assert "CSRF" in refused.text or "cross-site" in refused.text
    assert store.dead_letters("notify")  # nothing changed
    page = browser.get("/deadletters").text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    cross = browser.post("/deadletters/notify/5/replay", data={"csrf_token": csrf}, headers={"Origin": "http://evil"})
    assert cross.status_code == 403
    done = browser.post("/deadletters/notify/5/replay", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert not store.dead_letters("notify")
    api = browser.post("/api/groups/notify/reactivate", headers={"X-CSRF-Token": csrf})
    assert api.status_code == 200


def test_login_fails_with_a_wrong_password_and_sessions_cannot_be_forged(server: RunningServer) -> None:
    client = server.client(token=None)
    wrong = client.post("/login", data={"username": "admin", "password": "guess"}, follow_redirects=False)
    assert wrong.status_code == 303 and "failed=1" in wrong.headers["location"]
    forged = server.client(token=None, cookies={"trackwire_session": "eyJ1IjoiYWRtaW4ifQ.AAAA"})
    assert forged.get("/api/overview").status_code == 401
    token_login = client.post("/login", data={"username": "x", "password": TOKEN}, follow_redirects=False)
    assert token_login.status_code == 303 and token_login.headers["location"] == "/"
    assert client.get("/api/groups").status_code == 200
    page = client.get("/").text
    assert PASSWORD not in page and TOKEN not in page


def test_the_openapi_schema_describes_the_api(server: RunningServer) -> None:
    schema = server.client(token=None).get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/events", "/api/events/{event_id}", "/api/deadletters/{group}/{event_id}/replay"} <= paths
    assert "/hooks/{name}" in paths
    assert not any(p.startswith(("/groups", "/login")) for p in paths)


def test_a_combined_filter_searches_a_bounded_window_per_page(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trackwire.web import views

    monkeypatch.setattr(views, "SCAN_WINDOW", 30)
    client = server.client()
    first = client.get("/api/events", params={"source": "kitsu:main", "type": "Shotgun_Version_New"}).json()
    assert {e["id"] for e in first["items"]} == {i for i in range(91, 121) if i % 2 == 0 and i % 3 == 0}
    assert first["next_before"] == 91
    older = client.get(
        "/api/events", params={"source": "kitsu:main", "type": "Shotgun_Version_New", "before": 91}
    ).json()
    assert {e["id"] for e in older["items"]} == {i for i in range(61, 91) if i % 6 == 0}
