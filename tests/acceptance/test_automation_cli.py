"""``trackwire automations list|show|test|explain`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.harness import run_cli, write_config

RULES = """
[[automation]]
name = "approvals"
[automation.trigger]
expect = ["Shotgun_Shot_Change"]
for_each = ["entity.id"]
match = { attribute = "sg_status_list" }
threshold = 2
within = "10m"

[[automation]]
name = "stalled"
[automation.trigger]
after = ["render.started"]
expect = ["render.finished"]
posture = "proactive"
for_each = ["entity.id"]
within = "1h"
[[automation.actions]]
type = "shell"
command = ["echo", "{{ key }}"]
"""


def setup(tmp_path: Path) -> Path:
    config = write_config(tmp_path, [])
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "rules.toml").write_text(RULES)
    with config.open("a") as f:
        f.write('[automations]\npath = "automations"\n')
    return config


def recorded(tmp_path: Path) -> Path:
    events = [
        {"id": 1, "type": "Shotgun_Shot_Change", "entity": "Shot:1", "attribute": "sg_status_list",
         "occurred": "2026-01-01T10:00:00+00:00"},
        {"id": 2, "type": "Shotgun_Shot_Change", "entity": "Shot:1", "attribute": "code",
         "occurred": "2026-01-01T10:01:00+00:00"},
        {"id": 3, "type": "render.started", "entity": "Shot:1", "occurred": "2026-01-01T10:02:00+00:00"},
        {"id": 4, "type": "Shotgun_Shot_Change", "entity": "Shot:1", "attribute": "sg_status_list",
         "occurred": "2026-01-01T10:05:00+00:00"},
    ]  # fmt: skip
    path = tmp_path / "recorded.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return path


def test_list_and_show_describe_the_loaded_automations(tmp_path: Path) -> None:
    config = setup(tmp_path)
    listed = run_cli(config, "automations", "list")
    assert listed.returncode == 0, listed.stderr
    assert "approvals" in listed.stdout and "stalled" in listed.stdout and "proactive" in listed.stdout
    shown = run_cli(config, "automations", "show", "stalled")
    assert shown.returncode == 0, shown.stderr
    assert "after ['render.started']" in shown.stdout and "'shell'" in shown.stdout


def test_list_reports_a_broken_file_and_fails(tmp_path: Path) -> None:
    config = setup(tmp_path)
    (tmp_path / "automations" / "zz.toml").write_text("[[automation]]\nname='x'\n[automation.trigger]\nthreshold=0\n")
    listed = run_cli(config, "automations", "list")
    assert listed.returncode == 1
    assert "zz.toml" in listed.stderr and "threshold" in listed.stderr
    assert "approvals" in listed.stdout


def test_a_dry_run_says_what_would_fire_and_when(tmp_path: Path) -> None:
    config = setup(tmp_path)
    result = run_cli(config, "automations", "test", str(tmp_path / "automations" / "rules.toml"),
                     "--events", str(recorded(tmp_path)), "--lateness", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "approvals" in line or "stalled" in line]
    assert len(lines) == 2, result.stdout
    assert "2026-01-01T10:05:00" in lines[0] and "1 4" in lines[0]
    assert "2026-01-01T11:02:00" in lines[1] and "only 0 of 1" in lines[1]
    assert "2 firings from 4 events" in result.stdout


def test_explain_says_why_an_event_did_not_count(tmp_path: Path) -> None:
    config = setup(tmp_path)
    result = run_cli(config, "automations", "explain", "approvals", "--events", str(recorded(tmp_path)),
                     "--event", "2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "event 2 does not match: match: attribute='code' does not match ['sg_status_list']" in result.stdout
