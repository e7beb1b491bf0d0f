"""Automation files: what they may say, and the errors they get (file and key named)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackwire.automations.definitions import load_file, load_folder, parse_duration
from trackwire.core.triggers import CompoundTrigger, EventTrigger, SequenceTrigger
from trackwire.errors import ConfigError

FULL = """
[[automation]]
name = "approvals"
description = "approved twice and noted, per shot"
[automation.trigger]
require = "all"
within = "1h"
[[automation.trigger.triggers]]
expect = ["Shotgun_Shot_Change"]
for_each = ["entity.id"]
match = { attribute = "sg_status_list", "project.name" = ["*", "!test*"] }
threshold = 2
within = "10m"
[automation.trigger.triggers.where]
all = [{ path = "new", op = "eq", value = "apr" }, { not = { path = "user.name", op = "startswith", value = "bot" } }]
[[automation.trigger.triggers]]
expect = ["Shotgun_Note_New"]
for_each = ["entity.id"]
[[automation.actions]]
type = "webhook"
url = "https://example.test/hook"
attempts = 5

[[automation]]
name = "ordered"
[automation.trigger]
within = 90
[[automation.trigger.triggers]]
expect = ["a"]
[[automation.trigger.triggers]]
expect = ["b"]

[[automation]]
name = "silence"
[automation.trigger]
after = ["render.started"]
expect = ["render.finished"]
posture = "proactive"
within = "2h"
[[automation.actions]]
type = "shell"
command = ["echo", "{{ key }}"]
"""


def test_a_file_with_compound_sequence_and_proactive_triggers_loads(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(FULL)
    approvals, ordered, silence = load_file(path)
    assert isinstance(approvals.trigger, CompoundTrigger) and approvals.trigger.require == 2
    first = approvals.trigger.triggers[0]
    assert isinstance(first, EventTrigger) and first.within == 600 and first.threshold == 2
    assert approvals.actions[0]["attempts"] == 5 and approvals.actions[0]["url"] == "https://example.test/hook"
    assert isinstance(ordered.trigger, SequenceTrigger) and ordered.trigger.within == 90
    assert isinstance(silence.trigger, EventTrigger) and silence.trigger.posture == "proactive"
    assert silence.trigger.within == 7200 and silence.source == str(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[[automation]]\nname='x'\n[automation.trigger]\nposture='sideways'\n", "posture"),
        ("[[automation]]\nname='x'\n[automation.trigger]\nposture='proactive'\n", "positive 'within'"),
        ("[[automation]]\nname='x'\n[automation.trigger]\nwithin='soon'\n", "not a duration"),
        ("[[automation]]\nname='x'\n[automation.trigger]\nwhere={path='a', op='near', value=1}\n", "unknown operator"),
        (
            "[[automation]]\nname='x'\n[automation.trigger]\n[[automation.actions]]\ntype='shell'\ncommand='rm /'\n",
            "list of strings",
        ),
        ("[[automation]]\nname='x'\n[automation.trigger]\n[[automation.actions]]\ntype='fax'\n", "type"),
        (
            "[[automation]]\nname='x'\n[automation.trigger]\nrequire=3\n[[automation.trigger.triggers]]\nexpect=['a']\n",
            "require must be between 1 and 1",
        ),
        ("[[automation]]\nname='x'\n[automation.trigger]\nthreshold=0\n", "threshold"),
        ("[[automation]]\nname='x'\nbogus=1\n[automation.trigger]\n", "bogus"),
        ("[[automation]\n", "not valid TOML"),
    ],
)
def test_mistakes_are_reported_with_the_file_and_the_reason(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as caught:
        load_file(path)
    assert str(path) in str(caught.value)


def test_a_folder_reports_broken_files_and_duplicate_names_but_loads_the_rest(tmp_path: Path) -> None:
    (tmp_path / "1.toml").write_text("[[automation]]\nname='a'\n[automation.trigger]\nexpect=['x']\n")
    (tmp_path / "2.toml").write_text("[[automation]]\nname='a'\n[automation.trigger]\n")
    (tmp_path / "3.toml").write_text("nonsense = [")
    automations, errors = load_folder(tmp_path)
    assert [a.name for a in automations] == ["a"]
    assert len(errors) == 2 and "also defined" in str(errors[0]) and "3.toml" in str(errors[1])


def test_durations_accept_seconds_and_units() -> None:
    assert parse_duration(5) == 5.0
    assert parse_duration("250ms") == 0.25
    assert parse_duration("1.5h") == 5400.0
    with pytest.raises(ValueError):
        parse_duration(-1)
