"""Flow definitions: the Python builder, expressions as data, JSON round trips and TOML errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackwire.core.workflows.spec import All, AnyOf, Ev, StepStatus, evaluate, expr_from_json, expr_to_json
from trackwire.errors import ConfigError
from trackwire.workflows import Workflow, or_
from trackwire.workflows.definition import FlowBuilder, flow_from_json, flow_to_json, load_toml_flow


def step_function(x: int) -> int:
    return x


def test_tuples_mean_all_of_and_or_means_any_of_and_they_nest() -> None:
    flow = FlowBuilder("f")
    a, b, c = (flow.add_event(n) for n in ("a", "b", "c"))
    flow.add_event("j", expr=(a, or_(b, c)))
    expr = flow.spec().events["j"]
    assert expr == All((Ev("a"), AnyOf((Ev("b"), Ev("c")))))
    assert expr is not None and evaluate(expr, {"a", "c"}) and not evaluate(expr, {"b", "c"})
    assert expr_from_json(expr_to_json(expr)) == expr


def test_a_flow_survives_its_json_form_unchanged() -> None:
    flow = Workflow("round-trip", config={"max_concurrent": 3, "pools": {"gpu": 2}})
    go, done = flow.add_event("go"), flow.add_event("done.now")
    step = flow.add_step("s-1", step_function, kwargs={"x": 1}, triggers={StepStatus.SUCCESS: (done,)},
                         acquires=[("gpu", 1)], max_attempts=3, backoff=(0.5, 5.0), timeout=9.0)  # fmt: skip
    flow.add_assoc(go, step, delay=2.5)
    flow.add_assoc(done, flow.add_step("shell", command="true"))
    spec = flow.spec()
    assert flow_from_json(flow_to_json(spec)) == spec
    assert spec.steps["s-1"].target["qualname"] == "step_function"


def test_a_step_function_defined_inside_a_function_is_refused_with_the_reason() -> None:
    def local() -> None:
        return None

    with pytest.raises(ConfigError, match="define it at module level"):
        FlowBuilder("f").add_step("s", local)


def test_unknown_names_and_impossible_pool_requests_are_reported_at_definition() -> None:
    flow = Workflow("bad", config={"pools": {"gpu": 1}})
    go = flow.add_event("go")
    flow.add_assoc(go, flow.add_step("s", step_function, triggers={"success": ("nowhere",)}, acquires=[("gpu", 2)]))
    with pytest.raises(ConfigError) as caught:
        flow.spec()
    assert "unknown event 'nowhere'" in str(caught.value) and "which holds 1" in str(caught.value)


def test_a_toml_flow_reads_events_steps_assocs_and_starts(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        """
name = "toml"
[[start]]
event = "go"
types = ["Shotgun_Shot_Change"]
where = { new = "rfc" }
[[event]]
name = "go"
[[event]]
name = "both"
expr = { all = ["go", { any = ["go"] }] }
[[step]]
name = "s"
command = "true"
max_attempts = 2
[[assoc]]
event = "both"
steps = ["s"]
delay = 1.5
"""
    )
    flow = load_toml_flow(path)
    assert flow.steps["s"].max_attempts == 2 and flow.assocs[0].delay == 1.5
    assert flow.starts[0]["where"] == {"new": "rfc"}


def test_a_toml_flow_with_an_unknown_step_key_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text('[[event]]\nname = "go"\n[[step]]\nname = "s"\ncommand = "true"\nretires = 3\n')
    with pytest.raises(ConfigError, match="unknown key") as caught:
        load_toml_flow(path)
    assert str(path) in str(caught.value) and "step[0].retires" in str(caught.value)
