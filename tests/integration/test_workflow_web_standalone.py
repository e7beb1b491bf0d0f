"""``trackwire web`` alone (no daemon in the process): workflow runs are read from the store, and the
run actions are written to it as the CLI writes them, for a daemon elsewhere to carry out."""

from __future__ import annotations

from pathlib import Path

from tests.integration.web_support import serve_app, web_settings
from trackwire.core.workflows.machine import Machine
from trackwire.store.sqlite import SqliteStore
from trackwire.store.sqlite.workflow_runs import SqliteWorkflowRuns
from trackwire.web.app import create_store_app
from trackwire.workflows.definition import FlowBuilder, flow_to_json
from trackwire.workflows.intake import REQUEST
from trackwire.workflows.runs import definition_version, event_of


def failed_run(path: Path) -> tuple[SqliteStore, dict[str, object]]:
    """A store holding one run whose only step failed, written as the workflow service writes it."""
    builder = FlowBuilder("solo")
    go = builder.add_event("go")
    builder.add_assoc(go, builder.add_step("render", command="false"))
    flow = builder.spec()
    store = SqliteStore(path)
    runs = SqliteWorkflowRuns(path)
    definition = flow_to_json(flow)
    runs.insert("solo-1", "solo", origin="solo-1", mode="restart", recovers=None, definition=definition,
                triggers=[["Shot:3", "go"]])  # fmt: skip
    machine = Machine()
    records = machine.start("solo-1", flow, 100.0, [("Shot:3", "go")])
    records += machine.step_result("solo-1", "Shot:3", "render", 1, 101.5, ok=False, error="RuntimeError: no licence")
    store.append([event_of(r, "solo", n) for n, r in enumerate(records, 1)])
    runs.set_status("solo-1", "failure", "render failed")
    runs.close()
    return store, {"version": definition_version(definition)}


def test_the_store_alone_serves_runs_and_records_actions_for_a_daemon(tmp_path: Path) -> None:
    store, facts = failed_run(tmp_path / "tw.db")
    app = create_store_app(store, web_settings())
    try:
        with serve_app(app) as server:
            client = server.client()
            flows = client.get("/api/workflows").json()
            assert flows == {"live": False, "flows": [{"name": "solo"}], "pools": {}}
            view = client.get("/api/workflows/runs/solo-1").json()
            render = view["sequences"]["Shot:3"]["steps"]["render"]
            assert (view["status"], view["version"]) == ("failure", facts["version"])
            assert render["status"] == "failure" and render["error"] == "RuntimeError: no licence"
            assert render["finished"] - render["started"] == 1.5
            page = server.login().get("/workflows/runs/solo-1")
            assert 'data-node="s:render" data-status="failure"' in page.text and "no licence" in page.text
            answer = client.post("/api/workflows/runs/solo-1/retry").json()
            assert answer["requested"] == "retry"
    finally:
        app.state.backend.stop.set()
    (record,) = store.get_records([answer["event_id"]])
    assert record.event.type == REQUEST + "retry" and record.event.data == {"run": "solo-1"}
    assert record.event.source == "trackwire.web"
    store.close()
