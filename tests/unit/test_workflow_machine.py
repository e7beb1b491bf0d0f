"""The workflow state machine, fed facts with a manual clock: no I/O, no sleep."""

from __future__ import annotations

from trackwire.core.workflows import Machine, Record, Run, RunMode, StepStatus, apply
from trackwire.core.workflows.spec import All, AnyOf, Assoc, Ev, FlowSpec, Replay, StepSpec


def _step(name: str, **kw: object) -> StepSpec:
    return StepSpec(name=name, target={"command": "true"}, **kw)  # type: ignore[arg-type]


def chain(n: int, delay: float = 0.0) -> FlowSpec:
    events = {f"go{i}": None for i in range(n)}
    steps = {
        f"s{i}": _step(f"s{i}", triggers={StepStatus.SUCCESS: (f"go{i + 1}",)} if i + 1 < n else {}) for i in range(n)
    }
    assocs = tuple(Assoc(f"go{i}", f"s{i}", "step", delay if i else 0.0) for i in range(n))
    return FlowSpec("chain", events, steps, assocs)


def active(records: list[Record]) -> list[tuple[str, str, int]]:
    return [(r.data["seq"], r.data["step"], r.data["attempt"]) for r in records if r.kind == "step.active"]


def finish_all(machine: Machine, run_id: str, records: list[Record], now: float) -> list[Record]:
    """Succeed every started step until nothing more starts; return every record written."""
    written = list(records)
    todo = active(records)
    while todo:
        seq, step, attempt = todo.pop(0)
        out = machine.step_result(run_id, seq, step, attempt, now, ok=True, result=step.upper())
        written += out
        todo += active(out)
    return written


def test_a_three_step_chain_runs_each_step_once_in_order_and_succeeds() -> None:
    machine = Machine()
    records = machine.start("r1", chain(3), 100.0, [("1", "go0")])
    assert active(records) == [("1", "s0", 1)]
    written = finish_all(machine, "r1", records, 101.0)
    assert [a[1] for a in active(written)] == ["s0", "s1", "s2"]
    assert written[-1].kind == "run.finished" and written[-1].data["status"] == "success"
    assert machine.runs["r1"].seqs["1"].steps["s2"].result == "S2"


def test_an_and_join_waits_for_both_events_and_an_or_fires_on_the_first() -> None:
    flow = FlowSpec(
        "join",
        {"a": None, "b": None, "both": All((Ev("a"), Ev("b"))), "either": AnyOf((Ev("a"), Ev("b")))},
        {"j": _step("j"), "o": _step("o")},
        (Assoc("both", "j", "step"), Assoc("either", "o", "step")),
    )
    machine = Machine()
    first = machine.start("r", flow, 0.0, [("x", "a")])
    assert [s for _, s, _ in active(first)] == ["o"]
    second = machine.trigger("r", "x", "b", 1.0)
    assert [s for _, s, _ in active(second)] == ["j"]
    again = machine.trigger("r", "x", "a", 2.0)
    assert again == [], "an event is raised once per sequence"


def test_sequences_run_the_same_flow_independently() -> None:
    machine = Machine()
    records = machine.start("r", chain(2), 0.0, [("shot:1", "go0"), ("shot:2", "go0")])
    assert sorted(active(records)) == [("shot:1", "s0", 1), ("shot:2", "s0", 1)]


def test_a_delayed_association_sets_a_timer_and_runs_only_when_it_matures() -> None:
    machine = Machine()
    records = machine.start("r", chain(2, delay=10.0), 0.0, [("1", "go0")])
    out = machine.step_result("r", "1", "s0", 1, 1.0, ok=True)
    timers = [r for r in out if r.kind == "timer.set"]
    assert len(timers) == 1 and timers[0].data["due"] == 11.0
    assert active(out) == [] and not any(r.kind == "run.finished" for r in out)
    fired = machine.timer_due("r", timers[0].data["timer"], 11.02)
    assert active(fired) == [("1", "s1", 1)]
    assert [round(r.data["late"], 3) for r in fired if r.kind == "timer.fired"] == [0.02]
    assert records


def test_a_failed_step_retries_with_backoff_then_fails_the_run_when_it_stops_on_exception() -> None:
    flow = FlowSpec(
        "f", {"go": None}, {"s": _step("s", max_attempts=2, backoff=(1.0, 1.0))}, (Assoc("go", "s", "step"),)
    )
    machine = Machine()
    machine.start("r", flow, 0.0, [("1", "go")])
    out = machine.step_result("r", "1", "s", 1, 1.0, ok=False, error="boom")
    retry = [r for r in out if r.kind == "timer.set"]
    assert retry and 1.1 <= retry[0].data["due"] <= 2.0
    again = machine.timer_due("r", retry[0].data["timer"], retry[0].data["due"])
    assert active(again) == [("1", "s", 2)]
    final = machine.step_result("r", "1", "s", 2, 3.0, ok=False, error="boom")
    kinds = [r.kind for r in final]
    assert kinds == ["step.failed", "run.stopping", "run.finished"]
    assert final[-1].data["status"] == "failure"


def test_max_concurrent_and_a_pool_hold_back_steps_until_others_finish() -> None:
    steps = {f"s{i}": _step(f"s{i}", acquires=(("gpu", 1),)) for i in range(4)}
    flow = FlowSpec("w", {"go": None}, steps, tuple(Assoc("go", s, "step") for s in steps), max_concurrent=3)
    machine = Machine(pools={"gpu": 2})
    started = active(machine.start("r", flow, 0.0, [("1", "go")]))
    assert len(started) == 2 and machine.used("gpu") == 2
    seq, step, attempt = started[0]
    more = active(machine.step_result("r", seq, step, attempt, 1.0, ok=True))
    assert len(more) == 1 and machine.used("gpu") == 2


def test_recovery_skips_succeeded_steps_and_reruns_failed_ones_keeping_raised_events() -> None:
    flow = FlowSpec(
        "rec",
        {"run1": None, "done1": None, "run2": None, "done2": None, "run3": All((Ev("done1"), Ev("done2")))},
        {
            "s1": _step("s1", triggers={StepStatus.SUCCESS: ("done1", "run2")}),
            "s2": _step("s2", triggers={StepStatus.SUCCESS: ("done2",)}, recovery={StepStatus.FAILURE: Replay.RERUN}),
            "s3": _step("s3"),
        },
        (Assoc("run1", "s1", "step"), Assoc("run2", "s2", "step"), Assoc("run3", "s3", "step")),
    )
    machine = Machine()
    machine.start("a", flow, 0.0, [("3", "run1")])
    second = machine.step_result("a", "3", "s1", 1, 1.0, ok=True, result=9)
    failed = machine.step_result("a", "3", "s2", 1, 2.0, ok=False, error="ValueError: math domain error")
    assert active(second) == [("3", "s2", 1)] and failed[-1].data["status"] == "failure"
    previous = machine.runs["a"]
    records = machine.start("b", flow, 3.0, mode=RunMode.RECOVER, previous=previous)
    assert [r.data["step"] for r in records if r.kind == "step.skipped"] == ["s1"]
    assert active(records) == [("3", "s2", 1)]
    written = finish_all(machine, "b", records, 4.0)
    assert [s for _, s, _ in active(written)] == ["s2", "s3"]
    assert machine.runs["b"].seqs["3"].steps["s1"].result == 9, "a skipped step's result carries over"
    assert written[-1].data["status"] == "success"


def test_replaying_the_records_rebuilds_the_same_state_and_resume_reruns_interrupted_steps() -> None:
    machine = Machine()
    records = machine.start("r", chain(3, delay=5.0), 0.0, [("1", "go0")])
    records += machine.step_result("r", "1", "s0", 1, 1.0, ok=True)
    timer = next(r for r in records if r.kind == "timer.set")
    records += machine.timer_due("r", timer.data["timer"], 6.0)
    rebuilt = Machine()
    run = rebuilt.replay("r", chain(3, delay=5.0), records)
    assert run.active == {("1", "s1")} and run.seqs["1"].triggered.keys() == {"go0", "go1"}
    resumed = rebuilt.resume("r", 7.0)
    assert [r.kind for r in resumed] == ["step.interrupted", "step.active"]
    assert active(resumed) == [("1", "s1", 2)]


def test_a_cancelled_run_finishes_once_running_steps_end() -> None:
    machine = Machine()
    machine.start("r", chain(3), 0.0, [("1", "go0")])
    assert machine.cancel("r", 1.0)[-1].kind == "run.stopping"
    out = machine.step_result("r", "1", "s0", 1, 2.0, ok=True)
    assert out[-1].kind == "run.finished" and out[-1].data["status"] == "cancelled"
    assert active(out) == []


def test_apply_is_the_only_state_change_so_a_fresh_run_replays_identically() -> None:
    machine = Machine()
    records = finish_all(machine, "r", machine.start("r", chain(4), 0.0, [("1", "go0")]), 1.0)
    copy = Run("r", chain(4))
    for record in records:
        apply(copy, record)
    assert copy.to_json() == machine.runs["r"].to_json()
