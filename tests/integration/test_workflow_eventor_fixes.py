"""eventor's known failures, fixed: each one a run on the real engine (worker process, SQLite log)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trackwire.workflows as wf
from tests.conftest import wait_for
from trackwire.errors import MigrationError
from trackwire.store.sqlite.workflow_runs import SqliteWorkflowRuns
from trackwire.workflows.runs import run_view

HERE = Path(__file__).resolve()


def mark(path: str, name: str, pause: float = 0.0) -> str:
    """A step with a side effect: one line per call (start and end times), then an optional pause."""
    started = time.time()
    time.sleep(pause)
    step = wf.current()
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(
            json.dumps(
                {
                    "name": name,
                    "start": started,
                    "end": time.time(),
                    "attempt": step and step.attempt,
                    "pid": os.getpid(),
                    "run": step and step.run_id,
                }
            )
        )
        handle.write("\n")
    return name


def flaky(path: str, failures: int) -> int:
    """Fails its first ``failures`` calls."""
    calls = len(Path(path).read_text().splitlines()) if Path(path).exists() else 0
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("call\n")
    if calls < failures:
        raise RuntimeError(f"failure {calls + 1}")
    return calls + 1


def boom() -> None:
    raise ValueError("this step always fails")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def max_overlap(calls: list[dict[str, Any]]) -> int:
    points = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls], key=lambda p: (p[0], p[1]))
    best = current = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


def view(store: Path, run_id: str | None) -> dict[str, Any]:
    assert run_id is not None
    runs = SqliteWorkflowRuns(store)
    try:
        found = run_view(runs, run_id)
    finally:
        runs.close()
    assert found is not None
    return found


def fan_out(store: Path, out: Path, n: int, **config: Any) -> wf.Workflow:
    flow = wf.Workflow("fan", store=store, config=config)
    go = flow.add_event("go")
    for i in range(n):
        step = flow.add_step(f"s{i}", mark, kwargs={"path": str(out), "name": f"s{i}", "pause": 0.3})
        flow.add_assoc(go, step)
    flow.trigger_event(go, "x")
    return flow


def test_max_concurrent_limits_parallel_steps_without_crashing(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    flow = fan_out(tmp_path / "s.db", out, 6, max_concurrent=2)
    assert flow.run(timeout=120) is True
    calls = lines(out)
    assert len(calls) == 6
    assert max_overlap(calls) == 2


def test_a_resource_pool_is_respected_by_steps_running_in_the_worker_process(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    flow = wf.Workflow("pools", store=tmp_path / "s.db", config={"workers": 8})
    render = wf.ResourcePool("render", 2)
    go = flow.add_event("go")
    for i in range(5):
        step = flow.add_step(
            f"r{i}", mark, kwargs={"path": str(out), "name": f"r{i}", "pause": 0.3}, acquires=[(render, 1)]
        )
        flow.add_assoc(go, step)
    big = flow.add_step("big", mark, kwargs={"path": str(out), "name": "big", "pause": 0.3}, acquires=[(render, 2)])
    flow.add_assoc(go, big)
    flow.trigger_event(go, 1)
    assert flow.run(timeout=120) is True
    calls = lines(out)
    assert len(calls) == 6 and max_overlap(calls) == 2
    others = [c for c in calls if c["name"] != "big"]
    (whole,) = [c for c in calls if c["name"] == "big"]
    assert all(c["end"] <= whole["start"] or c["start"] >= whole["end"] for c in others), "big needs the whole pool"


def test_an_exception_in_a_step_ends_the_run_with_failure_instead_of_hanging(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    flow = wf.Workflow("fails", store=tmp_path / "s.db")
    go = flow.add_event("go")
    after = flow.add_event("after")
    bad = flow.add_step("bad", boom, triggers={wf.STEP_SUCCESS: (after,)})
    later = flow.add_step("later", mark, kwargs={"path": str(out), "name": "later"})
    flow.add_assoc(go, bad)
    flow.add_assoc(after, later)
    flow.trigger_event(go, 1)
    started = time.monotonic()
    assert flow.run(timeout=60) is False
    assert time.monotonic() - started < 30
    state = view(tmp_path / "s.db", flow.run_id)
    assert state["status"] == "failure"
    assert "ValueError: this step always fails" in state["sequences"]["1"]["steps"]["bad"]["error"]
    assert lines(out) == []


def test_without_stop_on_exception_other_branches_finish_and_the_run_still_reports_failure(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    flow = wf.Workflow("branches", store=tmp_path / "s.db", config={"stop_on_exception": False})
    go = flow.add_event("go")
    flow.add_assoc(go, flow.add_step("bad", boom))
    flow.add_assoc(go, flow.add_step("good", mark, kwargs={"path": str(out), "name": "good", "pause": 0.2}))
    flow.trigger_event(go, 1)
    assert flow.run(timeout=60) is False
    assert [c["name"] for c in lines(out)] == ["good"]
    assert view(tmp_path / "s.db", flow.run_id)["unhandled"] == ["bad[1]"]


def test_event_and_step_names_with_dashes_and_dots_run(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    flow = wf.Workflow("names.with-dashes", store=tmp_path / "s.db")
    first = flow.add_event("run-step.1")
    second = flow.add_event("run-step.2")
    both = flow.add_event("all.done-now", expr=wf.or_(second, first))
    a = flow.add_step("s-1.a", mark, kwargs={"path": str(out), "name": "s-1.a"}, triggers={wf.STEP_SUCCESS: (second,)})
    b = flow.add_step("s-2.b", mark, kwargs={"path": str(out), "name": "s-2.b"})
    c = flow.add_step("s-3.c", mark, kwargs={"path": str(out), "name": "s-3.c"})
    flow.add_assoc(first, a)
    flow.add_assoc(second, b)
    flow.add_assoc(both, c)
    flow.trigger_event(first, "shot:1.2-3")
    assert flow.run(timeout=60) is True
    assert sorted(c["name"] for c in lines(out)) == ["s-1.a", "s-2.b", "s-3.c"]


def test_a_failing_step_is_retried_with_backoff_and_a_hung_step_is_killed_at_its_timeout(tmp_path: Path) -> None:
    calls = tmp_path / "flaky.txt"
    flow = wf.Workflow("retries", store=tmp_path / "s.db", config={"stop_on_exception": False})
    go = flow.add_event("go")
    flow.add_assoc(go, flow.add_step("flaky", flaky, kwargs={"path": str(calls), "failures": 2}, max_attempts=3,
                                      backoff=(0.05, 0.1)))  # fmt: skip
    flow.add_assoc(go, flow.add_step("hangs", mark, kwargs={"path": str(tmp_path / "x"), "name": "h", "pause": 60},
                                      timeout=1.0))  # fmt: skip
    flow.trigger_event(go, 1)
    started = time.monotonic()
    assert flow.run(timeout=120) is False
    assert time.monotonic() - started < 30
    steps = view(tmp_path / "s.db", flow.run_id)["sequences"]["1"]["steps"]
    assert steps["flaky"]["status"] == "success" and steps["flaky"]["result"] == 3 and steps["flaky"]["failures"] == 2
    assert steps["hangs"]["status"] == "failure" and "1 s timeout" in steps["hangs"]["error"]


def test_a_shell_command_step_gives_its_output_and_fails_on_a_non_zero_exit(tmp_path: Path) -> None:
    flow = wf.Workflow("shell", store=tmp_path / "s.db", config={"stop_on_exception": False})
    go = flow.add_event("go")
    flow.add_assoc(go, flow.add_step("echo", command='echo "seq=$TRACKWIRE_STEP_SEQUENCE"'))
    flow.add_assoc(go, flow.add_step("false", command=["sh", "-c", "echo nope >&2; exit 3"]))
    flow.trigger_event(go, "shot:7")
    assert flow.run(timeout=60) is False
    steps = view(tmp_path / "s.db", flow.run_id)["sequences"]["shot:7"]["steps"]
    assert steps["echo"]["result"] == "seq=shot:7"
    assert "exited with 3: nope" in steps["false"]["error"]


CRASHING_PROGRAM = """
import sys
sys.path.insert(0, {root!r})
from tests.integration.test_workflow_eventor_fixes import delayed_flow
delayed_flow({store!r}, {out!r}, 'restart').run(timeout=120)
"""


def delayed_flow(store: str, out: str, mode: str, run_id: str | None = None) -> wf.Workflow:
    flow = wf.Workflow("delayed", store=store, run_mode=wf.RunMode(mode), run_id=run_id)
    events = [flow.add_event(f"e{i}") for i in range(3)]
    for i in range(3):
        triggers = {wf.STEP_SUCCESS: (events[i + 1],)} if i < 2 else {}
        step = flow.add_step(f"s{i}", mark, kwargs={"path": out, "name": f"s{i}"}, triggers=triggers)
        flow.add_assoc(events[i], step, delay=1.5 if i else 0)
    if mode == "restart":
        flow.trigger_event(events[0], 1)
    return flow


def dump(store: Path, run_id: str) -> list[Any]:
    from trackwire.workflows.runs import records_of

    runs = SqliteWorkflowRuns(store)
    try:
        return [(r.kind, r.data.get("step"), r.data.get("attempt"), r.at) for r in records_of(runs, run_id)]
    finally:
        runs.close()


def pending_timers(store: Path) -> list[Any]:
    if not store.exists():
        return []
    try:
        runs = SqliteWorkflowRuns(store)
    except MigrationError:  # the other process is creating the store right now
        return []
    try:
        found = runs.runs()
        return [] if not found else list((run_view(runs, found[0].run_id) or {}).get("timers", []))
    finally:
        runs.close()


def test_continue_after_a_crash_finishes_the_run(tmp_path: Path) -> None:
    store, out = tmp_path / "s.db", tmp_path / "calls.jsonl"
    root = str(HERE.parents[2])
    program = CRASHING_PROGRAM.format(root=root, store=str(store), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", program], cwd=tmp_path, start_new_session=True)
    try:
        wait_for(lambda: pending_timers(store), 60, what="s0 done and the delayed association's timer stored")
    finally:
        killed = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    runs = SqliteWorkflowRuns(store)
    try:
        (row,) = runs.runs()
    finally:
        runs.close()
    assert row.status == "running"
    flow = delayed_flow(str(store), str(out), "continue", run_id=row.run_id)
    assert flow.run(timeout=60) is True
    assert flow.run_id == row.run_id
    assert [c["name"] for c in lines(out)] == ["s0", "s1", "s2"], (killed, lines(out), dump(store, row.run_id))
