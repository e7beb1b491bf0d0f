"""The three seed examples of eventor, shipped in examples/workflows/, run on the engine."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from trackwire.plugins.loader import import_plugin
from trackwire.store.sqlite.workflow_runs import SqliteWorkflowRuns
from trackwire.workflows.runs import records_of, run_view

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"


def example(name: str) -> ModuleType:
    return import_plugin(f"example_{name}", EXAMPLES / f"{name}.py")


def view(store: Path, run_id: str | None) -> dict[str, Any]:
    assert run_id is not None
    runs = SqliteWorkflowRuns(store)
    try:
        found = run_view(runs, run_id)
    finally:
        runs.close()
    assert found is not None
    return found


def test_the_simple_example_runs_its_three_steps_one_after_another(tmp_path: Path) -> None:
    store = tmp_path / "simple.db"
    flow = example("simple").build_flow(str(store))
    assert flow.run(timeout=120) is True
    steps = view(store, flow.run_id)["sequences"]["1"]["steps"]
    assert {name: s["result"] for name, s in steps.items()} == {"s1": "prog1", "s2": "prog2", "s3": "prog3"}
    assert all(s["status"] == "success" and s["attempt"] == 1 for s in steps.values())
    assert steps["s1"]["finished"] <= steps["s2"]["started"] <= steps["s2"]["finished"] <= steps["s3"]["started"]


def test_the_recovery_example_fails_on_sqrt_of_minus_9_then_recovers_skipping_s1(tmp_path: Path) -> None:
    store = str(tmp_path / "recovery.db")
    module = example("recovery")
    first = module.build_flow(param=-9, store=store)
    assert first.run(timeout=120) is False
    failed = view(Path(store), first.run_id)
    assert failed["status"] == "failure"
    s2 = failed["sequences"]["3"]["steps"]["s2"]
    assert s2["status"] == "failure" and "math domain error" in s2["error"]
    assert "s3" not in failed["sequences"]["3"]["steps"]

    second = module.build_flow(module.evr.RUN_RECOVER, param=9, run_id=first.run_id, store=store)
    assert second.run(timeout=120) is True
    assert second.run_id != first.run_id
    recovered = view(Path(store), second.run_id)
    assert recovered["recovers"] == first.run_id and recovered["status"] == "success"
    steps = recovered["sequences"]["3"]["steps"]
    assert steps["s1"] == {**steps["s1"], "status": "success", "skipped": True, "result": 9}
    assert steps["s2"]["result"] == 3.0 and not steps["s2"]["skipped"]
    assert steps["s3"]["result"] == 3.0


def test_the_delay_example_starts_each_delayed_step_only_after_its_10_s_timer(tmp_path: Path) -> None:
    """Timers are never early; their lateness is recorded (the benchmark reports it, this test only
    checks it is there and sane: speed is not asserted in tests)."""
    store = tmp_path / "delay.db"
    flow = example("delay").build_flow(store=str(store))
    assert flow.run(timeout=120) is True
    steps = view(store, flow.run_id)["sequences"]["1"]["steps"]
    assert 10.0 <= steps["s2"]["started"] - steps["s1"]["finished"] < 15.0
    assert 10.0 <= steps["s3"]["started"] - steps["s2"]["finished"] < 15.0
    runs = SqliteWorkflowRuns(store)
    try:
        assert flow.run_id is not None
        late = [r.data["late"] for r in records_of(runs, flow.run_id) if r.kind == "timer.fired"]
    finally:
        runs.close()
    assert len(late) == 2 and all(0.0 <= x < 5.0 for x in late), late
