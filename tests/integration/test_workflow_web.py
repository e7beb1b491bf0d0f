"""Workflows in the web app: the JSON API (flows, runs, one run's graph and states, actions as the CLI
has them) and the pages, against a real daemon running a flow with an AND join."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.web_support import PASSWORD
from tests.integration.workflow_web_support import WorkflowDaemon, workflow_daemon


@pytest.fixture
def wf(tmp_path: Path) -> Iterator[WorkflowDaemon]:
    with workflow_daemon(tmp_path) as running:
        yield running


def start(wf: WorkflowDaemon, sequence: str = "Shot:1") -> str:
    body = {"flow": "shot-review", "events": ["go"], "sequence": sequence}
    response = wf.client.post("/api/workflows/start", json=body)
    assert response.status_code == 200, response.text
    run_id: str = response.json()["run"]
    return run_id


def test_the_api_lists_flows_and_runs_shows_a_failed_step_and_retries_it(wf: WorkflowDaemon) -> None:
    flows = wf.client.get("/api/workflows").json()
    assert flows["live"] is True
    (flow,) = flows["flows"]
    assert flow["name"] == "shot-review" and flow["steps"] == 3 and re.fullmatch(r"[0-9a-f]{12}", flow["version"])

    run_id = start(wf)
    view = wf.wait_status(run_id, "failure")
    steps = view["sequences"]["Shot:1"]["steps"]
    assert steps["fetch-plates"]["status"] == "success" and steps["fetch-plates"]["result"] == "plates for Shot:1"
    assert steps["build-script"]["status"] == "success"
    assert steps["publish"]["status"] == "failure"
    assert "the plates are not on the farm disk" in steps["publish"]["error"]
    assert steps["publish"]["started"] >= max(steps["fetch-plates"]["finished"], steps["build-script"]["finished"])
    assert view["version"] == flow["version"]
    assert view["graph"]["events"]["ready"] == {"all": ["plates.done", "script.done"]}

    listed = wf.client.get("/api/workflows/runs", params={"status": "failure"}).json()["runs"]
    assert [r["run_id"] for r in listed] == [run_id]
    assert wf.client.get("/api/workflows/runs", params={"status": "success"}).json()["runs"] == []
    assert wf.client.get("/api/workflows/runs", params={"status": "bogus"}).status_code == 400

    wf.flag.write_text("yes")
    wf.gate.write_text("open")
    response = wf.client.post(f"/api/workflows/runs/{run_id}/retry")
    assert response.status_code == 200 and response.json()["requested"] == "retry"
    view = wf.wait_status(run_id, "success")
    publish = view["sequences"]["Shot:1"]["steps"]["publish"]
    assert publish["result"] == "published" and publish["attempt"] == 2
    assert view["sequences"]["Shot:1"]["steps"]["fetch-plates"]["attempt"] == 1, "only the failed step ran again"


def test_unknown_runs_flows_and_actions_are_refused_with_the_reason(wf: WorkflowDaemon) -> None:
    missing = wf.client.get("/api/workflows/runs/nope")
    assert missing.status_code == 404 and "no run 'nope'" in missing.json()["detail"]
    assert wf.client.post("/api/workflows/runs/nope/retry").status_code == 404
    run_id = start(wf)
    wf.wait_status(run_id, "failure")
    bad = wf.client.post(f"/api/workflows/runs/{run_id}/explode")
    assert bad.status_code == 404 and "no action 'explode'" in bad.json()["detail"]
    unknown = wf.client.post("/api/workflows/start", json={"flow": "nope", "events": ["go"]})
    assert unknown.status_code == 404 and "shot-review" in unknown.json()["detail"]


def test_page_actions_need_the_session_csrf_token(wf: WorkflowDaemon) -> None:
    run_id = start(wf)
    wf.wait_status(run_id, "failure")
    with httpx.Client(base_url=wf.url, timeout=30.0) as browser:
        assert browser.get("/workflows").status_code in (303, 307) or "login" in str(browser.get("/workflows").url)
        browser.post("/login", data={"username": "admin", "password": PASSWORD, "next": "/workflows"})
        page = browser.get("/workflows")
        assert page.status_code == 200 and run_id in page.text and 'href="/workflows" aria-current="page"' in page.text
        run_page = browser.get(f"/workflows/runs/{run_id}")
        assert 'data-node="s:publish" data-status="failure"' in run_page.text
        assert 'data-node="e:ready"' in run_page.text and "all of 2" in run_page.text
        assert "the plates are not on the farm disk" in run_page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', run_page.text)
        assert csrf is not None
        refused = browser.post(f"/workflows/runs/{run_id}/retry", data={})
        assert refused.status_code == 403
        wf.flag.write_text("yes")
        wf.gate.write_text("open")
        done = browser.post(f"/workflows/runs/{run_id}/retry", data={"csrf_token": csrf.group(1)})
        assert done.status_code == 303 and "retry+of" in done.headers["location"]
    wf.wait_status(run_id, "success")
