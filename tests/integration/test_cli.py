"""The ``trackwire`` command, run as a subprocess against a real SQLite store (and a real daemon where needed)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.acceptance.harness import DaemonProcess, daemon, dead_letters, notes, run_cli, write_config
from tests.conftest import wait_for
from tests.integration.test_plugins_bad import _setup
from trackwire.config import load_settings


def _events(config: Path) -> list[dict[str, object]]:
    result = run_cli(config, "tail", "--no-follow", "--json", "--last", "1000")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _finished(d: DaemonProcess, plugin: str) -> list[int]:
    return [n["event"] for n in notes(d.folder / "out" / f"{plugin}.jsonl") if n["mark"] == "E"]


def _table_rows(text: str) -> list[list[str]]:
    """The cells of a rich table whose first column numbers the rows: folded cells joined back, without spaces."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = ["".join(c.split()) for c in line.strip("│").split("│")]
        if cells[0]:
            rows.append(cells)
        elif rows:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def _json_lines(*events: Mapping[str, object]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def test_init_writes_a_commented_config_and_an_example_plugin_that_load(tmp_path: Path) -> None:
    result = run_cli(None, "init", str(tmp_path / "studio"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = tmp_path / "studio" / "trackwire.toml"
    assert config.exists() and (tmp_path / "studio" / "plugins" / "example.py").exists()
    assert "#" in config.read_text(encoding="utf-8")
    settings = load_settings(config)
    assert settings.plugins and settings.resolve(settings.plugins[0].path) == tmp_path / "studio" / "plugins"
    listed = run_cli(config, "plugins", "list")
    assert listed.returncode == 0, listed.stderr
    assert "example" in listed.stdout and "new" in listed.stdout
    again = run_cli(None, "init", str(tmp_path / "studio"), cwd=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr


def test_emit_appends_an_event_from_flags_once_per_source_id(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    args = ["emit", "Shotgun_Task_Change", "--entity", "Task:12", "--project", "Project:3"]
    args += ["--attribute", "sg_status_list", "--old", "wtg", "--new", "ip", "--data", '{"meta": {"x": 1}}']
    args += ["--source", "shotgrid:test", "--source-id", "42"]
    first = run_cli(config, *args)
    assert first.returncode == 0, first.stderr
    assert "appended 1 event(s), 0 already stored" in first.stdout
    second = run_cli(config, *args)
    assert "appended 0 event(s), 1 already stored" in second.stdout
    (stored,) = _events(config)
    assert stored["id"] == 1 and stored["type"] == "Shotgun_Task_Change"
    assert stored["entity"] == {"type": "Task", "id": 12} and stored["project"] == {"type": "Project", "id": 3}
    assert (stored["attribute"], stored["old"], stored["new"]) == ("sg_status_list", "wtg", "ip")
    assert stored["data"] == {"meta": {"x": 1}} and stored["source"] == "shotgrid:test"


def test_emit_json_reads_a_file_or_stdin_and_rejects_bad_json_with_the_line_and_exit_code_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    events = tmp_path / "events.jsonl"
    events.write_text(
        _json_lines(
            {"type": "A", "entity": "Shot:1", "source_id": "a"},
            {"type": "B", "entity": {"type": "Asset", "id": 7, "name": "tree"}, "data": {"k": [1, 2]}},
        )
        + "\n",
        encoding="utf-8",
    )
    from_file = run_cli(config, "emit", "--json", str(events))
    assert from_file.returncode == 0, from_file.stderr
    assert "appended 2 event(s)" in from_file.stdout
    from_stdin = run_cli(config, "emit", "--json", "-", input=_json_lines({"type": "C", "key": "custom"}))
    assert from_stdin.returncode == 0, from_stdin.stderr
    stored = _events(config)
    assert [e["type"] for e in stored] == ["A", "B", "C"]
    assert stored[1]["entity"] == {"type": "Asset", "id": 7, "name": "tree"} and stored[1]["data"] == {"k": [1, 2]}
    assert stored[2]["key"] == "custom"

    cases = {
        '{"type": "A"}\n{"type": "B",\n': ["line 2", "not valid JSON"],
        '{"type": "A"}\n[1, 2]\n': ["line 2", "JSON object"],
        '{"entity": "Shot:1"}\n': ["line 1", "'type'"],
        '{"type": "A", "entity": "Shot"}\n': ["line 1", "Type:id"],
    }
    for text, expected in cases.items():
        bad = run_cli(config, "emit", "--json", "-", input=text)
        assert bad.returncode == 2, (text, bad.stdout, bad.stderr)
        assert all(part in bad.stderr for part in expected), (text, bad.stderr)
    flags = run_cli(config, "emit", "X", "--data", "{nope")
    assert flags.returncode == 2 and "--data" in flags.stderr, flags.stderr
    nothing = run_cli(config, "emit")
    assert nothing.returncode == 2
    assert len(_events(config)) == 3, "a rejected batch must append nothing"


def test_tail_without_follow_prints_the_last_events_and_exits(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    run_cli(
        config,
        "emit",
        "--json",
        "-",
        input=_json_lines(*({"type": f"T{n}", "entity": f"Shot:{n}"} for n in range(1, 8))),
    )
    text = run_cli(config, "tail", "--no-follow", "--last", "3")
    assert text.returncode == 0, text.stderr
    assert [line.split()[2] for line in text.stdout.splitlines()] == ["T5", "T6", "T7"]
    assert "Shot:7" in text.stdout
    as_json = run_cli(config, "tail", "--no-follow", "--last", "2", "--json")
    assert [json.loads(line)["id"] for line in as_json.stdout.splitlines()] == [6, 7]


def _failing_daemon(tmp_path: Path, **entry: object) -> Path:
    config = _setup(tmp_path, [{"path": "behave.py", "max_attempts": 1, **entry}, {"path": "steady.py"}])
    (tmp_path / "out" / "failing").touch()
    return config


def _emit_bad(config: Path, *actions: str) -> None:
    lines = _json_lines(
        *({"type": "Bad_Change", "entity": f"Shot:{n}", "data": {"action": a}} for n, a in enumerate(actions, 1))
    )
    result = run_cli(config, "emit", "--json", "-", input=lines)
    assert result.returncode == 0, result.stderr


def test_status_shows_groups_with_position_lag_and_failures_as_a_table_or_json(tmp_path: Path) -> None:
    config = _failing_daemon(tmp_path)
    with daemon(config) as d:
        d.start()
        d.wait_running()
        _emit_bad(config, "ok", "raise", "ok")
        wait_for(lambda: 2 in dead_letters(d.db, "behave"), 30, what="a dead letter")
        wait_for(lambda: len(_finished(d, "steady")) == 3, 30, what="steady to finish")

        def settled() -> dict[str, object] | None:
            result = run_cli(config, "status", "--json")
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            lags = {g["name"]: g["lag"] for g in report["groups"]}
            return report if lags == {"behave": 0, "steady": 0} else None

        report = wait_for(settled, 30, what="both groups to catch up")
        assert isinstance(report, dict)
        assert report["last_event"] == 3
        groups = {g["name"]: g for g in report["groups"]}
        assert groups["behave"]["deliveries"] == {"dead": 1} and groups["behave"]["state"] == "active"
        assert groups["steady"]["position"] == 3 and groups["steady"]["deliveries"] == {}
        table = run_cli(config, "status")
        assert table.returncode == 0, table.stderr
        assert "last event: 3" in table.stdout
        row = next(line for line in table.stdout.splitlines() if "behave" in line)
        assert row.split("│")[1:8] and [c.strip() for c in row.split("│")[1:8]] == [
            "behave",
            "active",
            "3",
            "0",
            "0",
            "0",
            "1",
        ], row
        assert d.stop()[0] == 0


def test_deadletters_list_show_replay_and_discard(tmp_path: Path) -> None:
    config = _failing_daemon(tmp_path)
    with daemon(config) as d:
        d.start()
        d.wait_running()
        _emit_bad(config, "raise", "raise", "ok")
        wait_for(lambda: set(dead_letters(d.db, "behave")) == {1, 2}, 30, what="two dead letters")

        listed = run_cli(config, "deadletters", "list")
        assert listed.returncode == 0, listed.stderr
        rows = [line for line in listed.stdout.splitlines() if "behave" in line]
        assert len(rows) == 2 and all("RuntimeError: boom on event" in r for r in rows), listed.stdout
        shown = run_cli(config, "deadletters", "show", "behave", "2")
        assert shown.returncode == 0, shown.stderr
        assert "RuntimeError: boom on event 2" in shown.stdout
        assert "Traceback (most recent call last)" in shown.stdout and "behave.py" in shown.stdout
        assert "Bad_Change" in shown.stdout and "Shot:2" in shown.stdout
        missing = run_cli(config, "deadletters", "show", "behave", "3")
        assert missing.returncode == 1 and "no dead letter for event 3" in missing.stderr

        discarded = run_cli(config, "deadletters", "discard", "behave", "1")
        assert "discarded 1 dead letter(s) of behave" in discarded.stdout
        (tmp_path / "out" / "failing").unlink()
        replayed = run_cli(config, "deadletters", "replay", "behave")
        assert "requeued 1 dead letter(s) of behave" in replayed.stdout
        wait_for(lambda: 2 in _finished(d, "behave"), 30, what="the replayed dead letter to run")
        assert 1 not in _finished(d, "behave"), "a discarded dead letter ran again"
        wait_for(lambda: not dead_letters(d.db, "behave"), 10, what="no dead letters left")
        assert "behave" not in run_cli(config, "deadletters", "list").stdout
        assert d.stop()[0] == 0


def test_replay_delivers_a_range_again_to_one_group_with_a_progress_bar(tmp_path: Path) -> None:
    config = _setup(tmp_path, [{"path": "behave.py"}, {"path": "steady.py"}])
    with daemon(config) as d:
        d.start()
        d.wait_running()
        _emit_bad(config, *["ok"] * 10)
        wait_for(lambda: len(_finished(d, "steady")) == 10 and len(_finished(d, "behave")) == 10, 30, what="all")
        result = run_cli(config, "replay", "steady", "--from", "3", "--to", "6", "--chunk", "2")
        assert result.returncode == 0, result.stderr
        assert "queueing 3..6 for steady" in result.stdout and "100%" in result.stdout, result.stdout
        assert "queued 4 deliveries" in result.stdout
        wait_for(lambda: len(_finished(d, "steady")) == 14, 30, what="the replayed range to run")
        counts = {n: _finished(d, "steady").count(n) for n in range(1, 11)}
        assert counts == {n: 2 if 3 <= n <= 6 else 1 for n in range(1, 11)}
        assert len(_finished(d, "behave")) == 10, "the replay reached another group"
        unknown = run_cli(config, "replay", "nobody", "--from", "1")
        assert unknown.returncode == 1 and "no group called 'nobody'" in unknown.stderr
        assert d.stop()[0] == 0


def test_plugins_list_shows_order_state_and_broken_files_and_reactivate_resumes_a_group(tmp_path: Path) -> None:
    # max_attempts 3: under the deactivate policy a failure still counts as an attempt, so with 1 the
    # event would be dead-lettered and the group would resume after it
    config = _failing_daemon(tmp_path, policy="deactivate", max_attempts=3)
    broken = tmp_path / "plugins" / "zz_broken.py"
    broken.write_text("def oops(:\n", encoding="utf-8")
    config.write_text(
        config.read_text(encoding="utf-8") + f'[[plugins]]\npath = "{broken}"\nstart = "beginning"\n',
        encoding="utf-8",
    )
    with daemon(config) as d:
        d.start()
        d.wait_running()
        _emit_bad(config, "ok", "raise", "ok")
        wait_for(lambda: "deactivated" in run_cli(config, "plugins", "list").stdout, 30, what="deactivation")
        listed = run_cli(config, "plugins", "list")
        assert listed.returncode == 0, listed.stderr
        rows = _table_rows(listed.stdout)
        assert [r[1] for r in rows] == ["behave", "steady", "zz_broken"], listed.stdout
        assert [r[2] for r in rows] == [
            str(tmp_path / "plugins" / f"{n}.py") for n in ("behave", "steady", "zz_broken")
        ]
        assert [r[4] for r in rows] == ["deactivate", "retry", "retry"]
        assert rows[0][5].startswith("deactivated(event2:RuntimeError:boomonevent2")
        assert rows[1][5] == "active"
        assert rows[2][5].startswith(f"{broken}:1:SyntaxError"), rows[2]
        assert _finished(d, "behave") == [1]

        (tmp_path / "out" / "failing").unlink()
        reactivated = run_cli(config, "plugins", "reactivate", "behave")
        assert reactivated.returncode == 0 and "behave reactivated" in reactivated.stdout
        wait_for(lambda: sorted(_finished(d, "behave")) == [1, 2, 3], 30, what="the group to resume at event 2")
        assert d.stop()[0] == 0


BAD_CONFIGS = {
    "unknown key": ("[engine]\nmax_attemps = 3\n", "engine.max_attemps", "Extra inputs are not permitted"),
    "wrong type": ("[engine]\ntimeout = 'soon'\n", "engine.timeout", "valid number"),
    "out of range": ("[engine]\nbatch_size = 0\n", "engine.batch_size", "greater than or equal to 1"),
    "bad plugin entry": (
        "[[plugins]]\npath = 'p'\npolicy = 'explode'\n",
        "plugins[0].policy",
        "'retry' or 'deactivate'",
    ),
    "not TOML": ("[engine\n", "", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
@pytest.mark.parametrize("command", [("run",), ("status",)])
def test_a_malformed_config_stops_with_exit_code_2_naming_the_file_key_and_reason(
    tmp_path: Path, case: str, command: tuple[str, ...]
) -> None:
    text, key, reason = BAD_CONFIGS[case]
    config = tmp_path / "trackwire.toml"
    config.write_text(text, encoding="utf-8")
    result = run_cli(config, *command)
    assert result.returncode == 2, (result.stdout, result.stderr)
    message = " ".join(result.stderr.split())
    assert str(config) in message and key in message and reason in message, result.stderr
