"""Flow files in TOML and YAML: one schema, the same flow from both, and mistakes reported with the
file, the key path and the reason in either format."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackwire.errors import ConfigError
from trackwire.workflows.definition import flow_to_json
from trackwire.workflows.files import load_flow_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"

TOML = """
name = "comp"
max_concurrent = 4
[[start]]
event = "go"
types = ["Shotgun_Shot_Change"]
sequence = "{entity}"
where = { new = "rfc" }
[[event]]
name = "go"
[[event]]
name = "plates.fetched"
[[event]]
name = "script-built"
[[event]]
name = "publish"
expr = { all = ["plates.fetched", { any = ["script-built", "go"] }] }
[[step]]
name = "fetch"
command = "echo plates"
triggers = { success = ["plates.fetched"] }
acquires = [["render", 1]]
max_attempts = 3
backoff = [0.5, 10]
timeout = 60
recovery = { failure = "rerun", success = "skip" }
[[step]]
name = "script"
func = "os.path:join"
args = ["a", "b"]
kwargs = {}
triggers = { complete = ["script-built"] }
stop_on_exception = false
[[step]]
name = "publish"
command = ["echo", "done"]
[[assoc]]
event = "go"
steps = ["fetch", "script"]
[[assoc]]
event = "publish"
steps = ["publish"]
delay = 1.5
"""

YAML = """
name: comp
max_concurrent: 4
start:
  - event: go
    types: [Shotgun_Shot_Change]
    sequence: "{entity}"
    where: {new: rfc}
event:
  - name: go
  - name: plates.fetched
  - name: script-built
  - name: publish
    expr: {all: [plates.fetched, {any: [script-built, go]}]}
step:
  - name: fetch
    command: echo plates
    triggers: {success: [plates.fetched]}
    acquires: [[render, 1]]
    max_attempts: 3
    backoff: [0.5, 10]
    timeout: 60
    recovery: {failure: rerun, success: skip}
  - name: script
    func: "os.path:join"
    args: [a, b]
    kwargs: {}
    triggers: {complete: [script-built]}
    stop_on_exception: false
  - name: publish
    command: [echo, done]
assoc:
  - event: go
    steps: [fetch, script]
  - event: publish
    steps: [publish]
    delay: 1.5
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_yaml_flow_is_the_same_flow_as_its_toml_twin(tmp_path: Path, suffix: str) -> None:
    from_toml = load_flow_file(write(tmp_path, "comp.toml", TOML))
    from_yaml = load_flow_file(write(tmp_path, "comp" + suffix, YAML))
    assert flow_to_json(from_yaml) == flow_to_json(from_toml)
    assert from_yaml.steps["fetch"].max_attempts == 3 and from_yaml.steps["fetch"].backoff == (0.5, 10.0)
    assert from_yaml.steps["script"].target == {"module": "os.path", "qualname": "join"}
    assert from_yaml.assocs[-1].delay == 1.5 and from_yaml.starts[0]["where"] == {"new": "rfc"}


def test_the_shipped_yaml_example_matches_the_toml_one() -> None:
    toml = load_flow_file(EXAMPLES / "comp_prep.toml")
    yaml = load_flow_file(EXAMPLES / "comp_prep.yaml")
    assert flow_to_json(yaml) | {"name": "x"} == flow_to_json(toml) | {"name": "x"}


BAD = [
    # (what is wrong, toml, yaml, key path, reason)
    ("unknown top key", 'nmae = "x"\n', "nmae: x\n", "nmae", "unknown key"),
    (
        "a string where a number goes",
        '[[event]]\nname = "go"\n[[step]]\nname = "s"\ncommand = "true"\nmax_attempts = "3"\n',
        "event: [{name: go}]\nstep:\n  - {name: s, command: 'true', max_attempts: '3'}\n",
        "step[0].max_attempts",
        "must be a whole number, not a string",
    ),
    (
        "zero attempts",
        '[[step]]\nname = "s"\ncommand = "true"\nmax_attempts = 0\n',
        "step:\n  - {name: s, command: 'true', max_attempts: 0}\n",
        "step[0].max_attempts",
        "must be 1 or more",
    ),
    (
        "a step without func or command",
        '[[step]]\nname = "s"\n',
        "step:\n  - name: s\n",
        "step[0]",
        "needs either func",
    ),
    (
        "a missing step name",
        '[[step]]\ncommand = "true"\n',
        "step:\n  - command: 'true'\n",
        "step[0].name",
        "is required",
    ),
    (
        "an unknown trigger status",
        '[[event]]\nname = "go"\n[[step]]\nname = "s"\ncommand = "true"\ntriggers = { succeeded = ["go"] }\n',
        "event: [{name: go}]\nstep:\n  - {name: s, command: 'true', triggers: {succeeded: [go]}}\n",
        "step[0].triggers.succeeded",
        "not a step status",
    ),
    (
        "a bad recovery directive",
        '[[step]]\nname = "s"\ncommand = "true"\nrecovery = { failure = "again" }\n',
        "step:\n  - {name: s, command: 'true', recovery: {failure: again}}\n",
        "step[0].recovery.failure",
        "must be one of rerun, skip",
    ),
    (
        "a malformed pool request",
        '[[step]]\nname = "s"\ncommand = "true"\nacquires = [["render"]]\n',
        "step:\n  - {name: s, command: 'true', acquires: [[render]]}\n",
        "step[0].acquires[0]",
        "[pool, amount] pair",
    ),
    (
        "a func without a colon",
        '[[step]]\nname = "s"\nfunc = "os.path.join"\n',
        "step:\n  - {name: s, func: os.path.join}\n",
        "step[0].func",
        "package.module:function",
    ),
    (
        "a bad expression",
        '[[event]]\nname = "j"\nexpr = { both = ["a"] }\n',
        "event:\n  - {name: j, expr: {both: [a]}}\n",
        "event[0].expr",
        "not an event expression",
    ),
    (
        "an association naming nothing",
        '[[event]]\nname = "go"\n[[assoc]]\nevent = "go"\n',
        "event: [{name: go}]\nassoc:\n  - event: go\n",
        "assoc[0]",
        "names no steps and no events",
    ),
    (
        "a negative delay",
        '[[event]]\nname = "go"\n[[assoc]]\nevent = "go"\nevents = ["go"]\ndelay = -1\n',
        "event: [{name: go}]\nassoc:\n  - {event: go, events: [go], delay: -1}\n",
        "assoc[0].delay",
        "must be 0 or more",
    ),
    (
        "steps that are not a list",
        'step = "s"\n',
        "step: s\n",
        "step",
        "must be a list of tables, not a string",
    ),
    (
        "a start without types",
        '[[event]]\nname = "go"\n[[start]]\nevent = "go"\n',
        "event: [{name: go}]\nstart:\n  - event: go\n",
        "start[0].types",
        "is required",
    ),
    (
        "an event defined twice",
        '[[event]]\nname = "go"\n[[event]]\nname = "go"\n',
        "event: [{name: go}, {name: go}]\n",
        "event[1].name",
        "defined twice",
    ),
]


@pytest.mark.parametrize("fmt", ["toml", "yaml"])
@pytest.mark.parametrize(("what", "toml", "yaml", "key", "reason"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_flow_file_names_the_file_the_key_path_and_the_reason(
    tmp_path: Path, fmt: str, what: str, toml: str, yaml: str, key: str, reason: str
) -> None:
    path = write(tmp_path, f"bad.{fmt}", toml if fmt == "toml" else yaml)
    with pytest.raises(ConfigError) as caught:
        load_flow_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, key {key}: "), message
    assert reason in message, message
    assert caught.value.path == str(path) and caught.value.key == key


def test_a_flow_that_names_an_unknown_event_is_reported_with_its_file(tmp_path: Path) -> None:
    path = write(tmp_path, "f.yaml", "event: [{name: go}]\nstep:\n  - {name: s, command: 'true'}\n"
                 "assoc:\n  - {event: nowhere, steps: [s]}\n")  # fmt: skip
    with pytest.raises(ConfigError, match="nowhere") as caught:
        load_flow_file(path)
    assert caught.value.path == str(path)


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "f.yaml", "name: x\nstep:\n  - name: s\n   command: [true\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+, column \d+\)") as caught:
        load_flow_file(path)
    assert str(path) in str(caught.value)


def test_toml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "f.toml", 'name = "x"\n[[step]\n')
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2") as caught:
        load_flow_file(path)
    assert str(path) in str(caught.value)


def test_yaml_is_read_safely_so_python_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "f.yaml", "name: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_flow_file(path)
    assert not (tmp_path / "pwned").exists()


def test_a_yaml_file_that_is_a_list_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "f.yaml", "- name: x\n")
    with pytest.raises(ConfigError, match="must be a mapping at the top, not a list"):
        load_flow_file(path)


def test_an_empty_yaml_file_is_an_empty_flow_named_after_the_file(tmp_path: Path) -> None:
    flow = load_flow_file(write(tmp_path, "nothing.yml", ""))
    assert flow.name == "nothing" and not flow.steps
