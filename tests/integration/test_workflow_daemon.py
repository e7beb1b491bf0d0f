"""Workflows inside the daemon: flows from ``[workflows] paths``, started by tracker events and by requests
in the log (what ``trackwire workflows start|retry|cancel`` append)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from trackwire.config import load_settings
from trackwire.core.event import Event, Ref
from trackwire.runtime.daemon import Daemon
from trackwire.store.sqlite import SqliteStore
from trackwire.store.sqlite.workflow_runs import SqliteWorkflowRuns
from trackwire.workflows.intake import request_event
from trackwire.workflows.runs import run_view

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"

PY_FLOWS = """
from pathlib import Path

import trackwire.workflows as wf

FLAG = Path({flag!r})


def needs_flag() -> str:
    if not FLAG.exists():
        raise RuntimeError("the flag file is missing")
    return FLAG.read_text()


def ok() -> str:
    return "ok"


fragile = wf.Workflow("fragile")
go = fragile.add_event("go")
done = fragile.add_event("done")
fragile.add_assoc(go, fragile.add_step("first", ok, triggers={{wf.STEP_SUCCESS: (done,)}}))
fragile.add_assoc(done, fragile.add_step("second", needs_flag))

slow = wf.Workflow("slow")
begin = slow.add_event("begin")
later = slow.add_event("later")
slow.add_assoc(begin, later, delay=30)
slow.add_assoc(later, slow.add_step("never", ok))
"""


def shot_event(shot: int, new: str, n: int) -> Event:
    return Event(
        source="shotgrid:test",
        source_id=str(n),
        type="Shotgun_Shot_Change",
        entity=Ref("Shot", shot),
        attribute="sg_status_list",
        old="ip",
        new=new,
    )


async def until(check: Any, timeout: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {check}"
        await asyncio.sleep(0.05)


def test_tracker_events_and_requests_in_the_log_drive_runs_in_the_daemon(tmp_path: Path) -> None:
    flag = tmp_path / "flag.txt"
    (tmp_path / "flows.py").write_text(PY_FLOWS.format(flag=str(flag)), encoding="utf-8")
    db = tmp_path / "tw.db"
    settings = load_settings(
        None,
        overrides={
            "store.url": f"sqlite:///{db}",
            "web.enabled": False,
            "log.file": "",
            "workflows": {
                "paths": [str(EXAMPLES / "comp_prep.toml"), str(tmp_path / "flows.py")],
                "pools": {"render": 2},
            },
        },
    )
    store = SqliteStore(db)
    runs = SqliteWorkflowRuns(db)

    def status_of(run_id: str) -> str | None:
        row = runs.get(run_id)
        return None if row is None or row.status == "running" else row.status

    def append(event: Event) -> int:
        (event_id,) = store.append([event]).new
        daemon.notify_appended()
        return event_id

    async def scenario() -> dict[str, Any]:
        task = asyncio.create_task(daemon.run(install_signals=False))
        try:
            return await drive()
        finally:
            daemon.request_stop()
            await asyncio.wait_for(task, 30)

    async def drive() -> dict[str, Any]:
        await until(lambda: (running := daemon.workflows) is not None and running.ready.is_set())
        results: dict[str, Any] = {}
        assert await until(lambda: status_of(f"comp-prep-{early}")) == "success", "a request made before the start"
        first = append(shot_event(1, "rfc", 11))
        append(shot_event(2, "ip", 12))
        second = append(shot_event(3, "rfc", 13))
        for event_id in (first, second):
            assert await until(lambda e=event_id: status_of(f"comp-prep-{e}")) == "success", run_view(
                runs, f"comp-prep-{event_id}"
            )
        results["comp"] = [run_view(runs, f"comp-prep-{e}") for e in (first, second)]
        results["comp_runs"] = runs.runs(flow="comp-prep")

        started = append(request_event("start", {"flow": "fragile", "triggers": [["shot:9", "go"]]}))
        assert await until(lambda: status_of(f"fragile-{started}")) == "failure"
        flag.write_text("flag!")
        append(request_event("retry", {"run": f"fragile-{started}"}))
        await until(lambda: status_of(f"fragile-{started}") == "success")
        results["fragile"] = run_view(runs, f"fragile-{started}")

        waiting = append(request_event("start", {"flow": "slow", "triggers": [["x", "begin"]]}))
        await until(lambda: (run_view(runs, f"slow-{waiting}") or {}).get("timers"))
        append(request_event("cancel", {"run": f"slow-{waiting}"}))
        assert await until(lambda: status_of(f"slow-{waiting}")) == "cancelled"
        return results

    early_request = request_event("start", {"flow": "comp-prep", "triggers": [["Shot:99", "ready"]]})
    (early,) = store.append([early_request]).new
    daemon = Daemon(settings, store=store)
    try:
        results = asyncio.run(scenario())
    finally:
        runs.close()
    comp = results["comp"]
    assert [list(v["sequences"]) for v in comp] == [["Shot:1"], ["Shot:3"]]
    assert len(results["comp_runs"]) == 3, "the 'ip' change starts nothing"
    steps = comp[0]["sequences"]["Shot:1"]["steps"]
    assert steps["publish"]["result"] == "published Shot:1"
    assert steps["publish"]["started"] >= max(steps["fetch-plates"]["finished"], steps["build-script"]["finished"])
    second = results["fragile"]["sequences"]["shot:9"]["steps"]["second"]
    assert second["result"] == "flag!" and second["attempt"] == 2
    assert results["fragile"]["sequences"]["shot:9"]["steps"]["first"]["attempt"] == 1
