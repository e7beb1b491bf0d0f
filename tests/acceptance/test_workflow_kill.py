"""SIGKILL the daemon in the middle of a 50-step flow with joins and delays; the restarted daemon finishes it.

Every step appends one line (step, attempt) to a file, its side effect. After the kill and the
restart the run must succeed with each step's side effect exactly once for its successful attempt:
the only extra lines allowed are those of attempts that were running when the daemon died.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.acceptance.harness import daemon, run_cli, write_config
from tests.conftest import wait_for
from trackwire.store.sqlite.workflow_runs import SqliteWorkflowRuns
from trackwire.workflows.runs import records_of

FLOW = """
import json
import time

import trackwire.workflows as wf

OUT = {out!r}


def work(name: str) -> str:
    step = wf.current()
    time.sleep(0.04)
    with open(OUT, "a", encoding="utf-8") as handle:
        handle.write(json.dumps([name, step.attempt if step else 0]) + "\\n")
    return name


flow = wf.Workflow("fifty")
start = flow.add_event("start")
previous = start
for stage in range(5):
    begin = flow.add_event(f"stage-{{stage}}.begin")
    flow.add_assoc(previous, begin, delay=0.25)
    done = []
    for i in range(8):
        ev = flow.add_event(f"stage-{{stage}}.done-{{i}}")
        step = flow.add_step(f"s{{stage}}.{{i}}", work, kwargs={{"name": f"s{{stage}}.{{i}}"}},
                             triggers={{wf.STEP_SUCCESS: (ev,)}})
        flow.add_assoc(begin, step)
        done.append(ev)
    joined = flow.add_event(f"stage-{{stage}}.joined", expr=tuple(done))
    finished = flow.add_event(f"stage-{{stage}}.finished")
    join = flow.add_step(f"join{{stage}}", work, kwargs={{"name": f"join{{stage}}"}},
                         triggers={{wf.STEP_SUCCESS: (finished,)}})
    flow.add_assoc(joined, join)
    previous = finished
for i in range(5):
    nxt = flow.add_event(f"tail-{{i}}")
    step = flow.add_step(f"tail{{i}}", work, kwargs={{"name": f"tail{{i}}"}}, triggers={{wf.STEP_SUCCESS: (nxt,)}})
    flow.add_assoc(previous, step, delay=0.1 if i % 2 else 0)
    previous = nxt
"""


def side_effects(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [tuple(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_a_flow_killed_mid_run_completes_after_restart_with_each_side_effect_once(tmp_path: Path) -> None:
    out = tmp_path / "effects.jsonl"
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "fifty.py").write_text(FLOW.format(out=str(out)), encoding="utf-8")
    config = write_config(tmp_path, [])
    config.write_text(config.read_text() + '\n[workflows]\npaths = ["flows"]\nworkers = 8\n', encoding="utf-8")
    with daemon(config) as proc:
        proc.start()
        proc.wait_running()
        wait_for(lambda: "group workflows" in proc.log(), 60, what="the workflow intake")
        started = run_cli(config, "workflows", "start", "fifty", "--event", "start", "--sequence", "shot:1")
        assert started.returncode == 0, started.stderr
        wait_for(lambda: len(side_effects(out)) >= 20, 60, what="20 steps done")
        proc.kill()
        killed_at = len(side_effects(out))
        assert killed_at < 50, "the kill came too late to test anything"
        proc.start()
        proc.wait_running()

        def finished() -> str | None:
            runs = SqliteWorkflowRuns(proc.db)
            try:
                rows = runs.runs()
            finally:
                runs.close()
            return rows[0].status if rows and rows[0].status != "running" else None

        assert wait_for(finished, 120, what="the run to finish after the restart") == "success"
        shown = run_cli(config, "workflows", "show", "--json", json.loads(run_cli(config, "workflows", "runs", "--json")
                                                                           .stdout)[0]["run_id"])  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        proc.stop(signal.SIGTERM)

    runs = SqliteWorkflowRuns(tmp_path / "trackwire.db")
    try:
        (row,) = runs.runs()
        records = records_of(runs, row.run_id)
    finally:
        runs.close()
    succeeded = {r.data["step"]: r.data["attempt"] for r in records if r.kind == "step.succeeded"}
    started_attempts = Counter((r.data["step"], r.data["attempt"]) for r in records if r.kind == "step.active")
    effects = side_effects(out)
    assert len(succeeded) == 50
    assert sum(1 for r in records if r.kind == "step.succeeded") == 50, "one success per step"
    by_attempt = Counter(effects)
    for step, attempt in succeeded.items():
        assert by_attempt[(step, attempt)] == 1, f"{step} attempt {attempt}: {by_attempt[(step, attempt)]} side effects"
    for (step, attempt), count in by_attempt.items():
        assert count == 1, f"{step} attempt {attempt} ran {count} times"
        assert started_attempts[(step, attempt)] == 1, f"{step} attempt {attempt} was never recorded as started"
    extra = len(effects) - 50
    interrupted = sum(1 for r in records if r.kind == "step.interrupted")
    assert extra <= interrupted, (extra, interrupted)
    assert any(r.kind == "step.interrupted" for r in records) or extra == 0
    view = json.loads(shown.stdout)
    assert view["status"] == "success" and len(view["sequences"]["shot:1"]["steps"]) == 50
