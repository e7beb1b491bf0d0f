"""Flow definitions reloaded while the daemon runs: a flow file added, changed, removed or broken is
picked up without a restart; a run keeps the definition it started with (its version is recorded),
new runs take the new one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.integration.workflow_web_support import WorkflowDaemon, workflow_daemon

GATED = """
name = "gated"
[[event]]
name = "go"
[[event]]
name = "next"
[[step]]
name = "wait"
command = ["sh", "-c", "while [ ! -f {gate} ]; do sleep 0.05; done; echo waited"]
triggers = {{ success = ["next"] }}
[[step]]
name = "report"
command = "echo {word} report"
[[assoc]]
event = "go"
steps = ["wait"]
[[assoc]]
event = "next"
steps = ["report"]
"""


@pytest.fixture
def wf(tmp_path: Path) -> Iterator[WorkflowDaemon]:
    with workflow_daemon(tmp_path) as running:
        yield running


def flows(wf: WorkflowDaemon) -> dict[str, Any]:
    return {f["name"]: f for f in wf.client.get("/api/workflows").json()["flows"]}


def start(wf: WorkflowDaemon, flow: str) -> str:
    response = wf.client.post("/api/workflows/start", json={"flow": flow, "events": ["go"], "sequence": "s"})
    assert response.status_code == 200, response.text
    run_id: str = response.json()["run"]
    return run_id


def step(wf: WorkflowDaemon, run_id: str, name: str) -> dict[str, Any]:
    response = wf.client.get(f"/api/workflows/runs/{run_id}")
    if response.status_code != 200:
        return {}
    steps: dict[str, Any] = response.json()["sequences"].get("s", {}).get("steps", {})
    return dict(steps.get(name, {}))


def test_added_changed_and_removed_flow_files_are_picked_up_and_runs_keep_their_definition(
    wf: WorkflowDaemon, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gate = tmp_path / "gate"
    path = wf.flows / "gated.toml"

    # added
    path.write_text(GATED.format(gate=gate, word="old"), encoding="utf-8")
    wait_for(lambda: "gated" in flows(wf), timeout=30, what="the new flow file to be loaded")
    first_version = flows(wf)["gated"]["version"]
    old_run = start(wf, "gated")
    wait_for(lambda: step(wf, old_run, "wait").get("status") == "active", timeout=30, what="the old run's step")

    # changed while a run of the old definition is in the middle of its step
    path.write_text(GATED.format(gate=gate, word="new"), encoding="utf-8")
    wait_for(lambda: flows(wf)["gated"]["version"] != first_version, timeout=30, what="the changed flow")
    second_version = flows(wf)["gated"]["version"]
    new_run = start(wf, "gated")
    wait_for(lambda: step(wf, new_run, "wait").get("status") == "active", timeout=30, what="the new run's step")
    gate.write_text("open")
    old = wf.wait_status(old_run, "success")
    new = wf.wait_status(new_run, "success")
    assert old["sequences"]["s"]["steps"]["report"]["result"] == "old report", "the run kept its definition"
    assert new["sequences"]["s"]["steps"]["report"]["result"] == "new report", "a new run takes the new one"
    assert (old["version"], new["version"]) == (first_version, second_version)
    assert old["sequences"]["s"]["steps"]["wait"]["attempt"] == 1, "the step in flight was not run twice"
    runs = {r["run_id"]: r["version"] for r in wf.client.get("/api/workflows/runs?flow=gated").json()["runs"]}
    assert runs == {old_run: first_version, new_run: second_version}

    # removed: no new run can start; the runs already done stay readable
    path.unlink()
    wait_for(lambda: "gated" not in flows(wf), timeout=30, what="the removed flow to be dropped")
    refused = wf.client.post("/api/workflows/start", json={"flow": "gated", "events": ["go"]})
    assert refused.status_code == 404 and "no flow called 'gated'" in refused.json()["detail"]
    assert wf.run(old_run)["status"] == "success"

    # broken: reported, and the previous definitions keep running
    review = wf.flows / "review.toml"
    version = flows(wf)["shot-review"]["version"]
    with caplog.at_level(logging.ERROR, logger="trackwire.workflows"):
        review.write_text('name = "shot-review"\n[[step]\nname = "x"\n', encoding="utf-8")
        wait_for(lambda: "cannot be loaded" in caplog.text, timeout=30, what="the broken file to be reported")
    assert "review.toml" in caplog.text and "keeping the previous flows" in caplog.text
    assert flows(wf)["shot-review"]["version"] == version
    run_id = start(wf, "shot-review")
    view = wf.wait_status(run_id, "failure")  # the flow's last step fails until its flag exists
    assert view["sequences"]["s"]["steps"]["fetch-plates"]["status"] == "success"
    assert view["version"] == version


def test_a_run_of_a_removed_flow_resumes_after_a_restart_with_its_stored_definition(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with workflow_daemon(tmp_path) as wf:
        path = wf.flows / "gated.toml"
        path.write_text(GATED.format(gate=gate, word="stored"), encoding="utf-8")
        wait_for(lambda: "gated" in flows(wf), timeout=30, what="the flow file to be loaded")
        run_id = start(wf, "gated")
        wait_for(lambda: step(wf, run_id, "wait").get("status") == "active", timeout=30, what="the step to start")
        path.unlink()
        wait_for(lambda: "gated" not in flows(wf), timeout=30, what="the removed flow to be dropped")
    # the daemon stopped with the step in flight; the flow's file is gone; the run still finishes
    gate.write_text("open")
    (tmp_path / "flows").rename(tmp_path / "flows-before")
    with workflow_daemon(tmp_path) as wf:
        assert "gated" not in flows(wf)
        view = wf.wait_status(run_id, "success")
    assert view["sequences"]["s"]["steps"]["report"]["result"] == "stored report"
