"""Bad plugins against the real daemon (``trackwire run`` as a subprocess): each misbehaviour stays contained.

The plugins are ``tests/fixtures/bad`` (copied per test, since some tests edit them): ``behave`` does what
each event's ``data.action`` says, ``steady`` is a well-behaved plugin on the same events.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.harness import (
    FIXTURES,
    DaemonProcess,
    append,
    daemon,
    dead_letters,
    notes,
    run_cli,
    write_config,
)
from tests.conftest import wait_for
from trackwire.core.event import Event, Ref


def _setup(tmp_path: Path, entries: list[dict[str, Any]], **engine: Any) -> Path:
    plugins = tmp_path / "plugins"
    shutil.copytree(FIXTURES / "bad", plugins, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    out.mkdir()
    for entry in entries:
        entry["path"] = plugins / entry["path"]
        entry.setdefault("start", "beginning")
        entry.setdefault("options", {"out": str(out)})
    return write_config(tmp_path, entries, engine)


def _bad(number: int, entity: int, action: str = "ok") -> Event:
    return Event(
        source="test", source_id=str(number), type="Bad_Change", entity=Ref("Shot", entity), data={"action": action}
    )


def _lines(d: DaemonProcess, plugin: str) -> list[dict[str, Any]]:
    return notes(d.folder / "out" / f"{plugin}.jsonl")


def _finished(d: DaemonProcess, plugin: str) -> set[int]:
    return {n["event"] for n in _lines(d, plugin) if n["mark"] == "E"}


def _wait_finished(d: DaemonProcess, plugin: str, events: set[int], timeout: float = 30.0) -> None:
    wait_for(lambda: events <= _finished(d, plugin), timeout, what=f"{plugin} to finish events {sorted(events)}")


BROKEN = {
    "syntax": (
        "from trackwire import on\n\n\n@on('Bad_Change')\ndef callback(event, ctx)\n    pass\n",
        5,
        "SyntaxError",
    ),
    "import": ("import os\nimport trackwire_no_such_module_for_tests\n", 2, "ModuleNotFoundError"),
    "raise at import": ("import os\n\nraise RuntimeError('not configured')\n", 3, "RuntimeError: not configured"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_plugin_that_fails_to_load_is_reported_with_file_and_line_and_the_others_keep_running(
    tmp_path: Path, kind: str
) -> None:
    source, line, error = BROKEN[kind]
    config = _setup(tmp_path, [{"path": "broken.py"}, {"path": "steady.py"}])
    broken = tmp_path / "plugins" / "broken.py"
    broken.write_text(source, encoding="utf-8")
    with daemon(config) as d:
        d.start()
        d.wait_running()
        wait_for(lambda: f"{broken}:{line}" in d.log(), 10, what="the load failure in the log")
        failure = next(x for x in d.log().splitlines() if f"{broken}:{line}" in x)
        assert "failed to load" in failure and error in failure, failure
        append(d.db, [_bad(n, n) for n in range(1, 6)])
        _wait_finished(d, "steady", {1, 2, 3, 4, 5})
        assert d.stop()[0] == 0


def test_a_raising_callback_is_retried_with_backoff_then_dead_lettered_and_a_replay_runs_it_again(
    tmp_path: Path,
) -> None:
    config = _setup(tmp_path, [{"path": "behave.py"}, {"path": "steady.py"}], backoff_base=0.2, backoff_cap=1.0)
    (tmp_path / "out" / "failing").touch()
    with daemon(config) as d:
        d.start()
        d.wait_running()
        # event 3 shares event 2's entity, so it waits until 2 is dead-lettered; 1 and 4 do not wait
        append(d.db, [_bad(1, 1), _bad(2, 2, "raise"), _bad(3, 2), _bad(4, 3)])
        wait_for(lambda: 2 in dead_letters(d.db, "behave"), 30, what="event 2 to be dead-lettered")
        _wait_finished(d, "behave", {1, 3, 4})
        row = dead_letters(d.db, "behave")[2]
        assert row.attempts == 3
        assert row.error == "RuntimeError: boom on event 2"
        assert row.traceback is not None and 'raise RuntimeError(f"boom on event {event.id}")' in row.traceback
        tries = [n for n in _lines(d, "behave") if n["event"] == 2 and n["mark"] == "S"]
        assert [n["attempt"] for n in tries] == [1, 2, 3]
        gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(tries)]
        # full jitter keeps at least a tenth of each ceiling (0.2 s, then 0.4 s)
        assert gaps[0] >= 0.02 and gaps[1] >= 0.04, gaps
        third = next(n for n in _lines(d, "behave") if n["event"] == 3 and n["mark"] == "S")
        assert third["time"] > tries[-1]["time"], "event 3 ran before event 2 of the same entity was settled"
        assert "dead-lettered after 3 attempts" in d.log()
        _wait_finished(d, "steady", {1, 2, 3, 4})

        (tmp_path / "out" / "failing").unlink()
        replay = run_cli(d.config, "deadletters", "replay", "behave")
        assert replay.returncode == 0, replay.stderr
        assert "requeued 1" in replay.stdout
        _wait_finished(d, "behave", {2})
        wait_for(lambda: not dead_letters(d.db, "behave"), 10, what="the dead letter to be gone")
        again = [n for n in _lines(d, "behave") if n["event"] == 2 and n["mark"] == "E"]
        assert [n["attempt"] for n in again] == [1]
        assert d.stop()[0] == 0


def test_the_deactivate_policy_stops_the_plugin_until_its_file_changes_then_resumes_from_the_failed_event(
    tmp_path: Path,
) -> None:
    config = _setup(tmp_path, [{"path": "behave.py", "policy": "deactivate"}, {"path": "steady.py"}])
    (tmp_path / "out" / "failing").touch()
    with daemon(config) as d:
        d.start()
        d.wait_running()
        # event 3 (another entity) travels in the same batch as the failing event 2: it must not run either
        append(d.db, [_bad(1, 1), _bad(2, 2, "raise"), _bad(3, 3)])
        wait_for(lambda: _group_state(d, "behave") == "deactivated", 30, what="the group to be deactivated")
        assert "group behave deactivated: event 2: RuntimeError: boom on event 2" in d.log()
        append(d.db, [_bad(4, 1)])
        _wait_finished(d, "steady", {1, 2, 3, 4})
        assert _finished(d, "behave") == {1}, "a deactivated plugin kept handling events"

        (tmp_path / "out" / "failing").unlink()
        plugin = tmp_path / "plugins" / "behave.py"
        plugin.write_text(plugin.read_text(encoding="utf-8") + "\n# fixed\n", encoding="utf-8")
        _wait_finished(d, "behave", {2, 3, 4})
        assert _group_state(d, "behave") == "active"
        starts = [n["event"] for n in _lines(d, "behave") if n["mark"] == "S"]
        assert starts.count(1) == 1, "the plugin resumed before its last good event"
        assert d.stop()[0] == 0


def _group_state(d: DaemonProcess, name: str) -> str | None:
    with d.store() as store:
        return next((g.state for g in store.groups() if g.name == name), None)


def test_a_hanging_callback_is_killed_after_its_timeout_with_its_stack_and_the_rest_keeps_flowing(
    tmp_path: Path,
) -> None:
    config = _setup(tmp_path, [{"path": "behave.py", "timeout": 1.0, "max_attempts": 2}, {"path": "steady.py"}])
    with daemon(config) as d:
        d.start()
        d.wait_running()
        append(d.db, [_bad(1, 1, "hang"), _bad(2, 1), _bad(3, 2), _bad(4, 3)])
        _wait_finished(d, "steady", {1, 2, 3, 4})
        wait_for(lambda: 1 in dead_letters(d.db, "behave"), 30, what="the hung event to be dead-lettered")
        _wait_finished(d, "behave", {2, 3, 4})
        row = dead_letters(d.db, "behave")[1]
        assert row.attempts == 2
        assert row.error is not None and "timed out" in row.error and "1 s timeout" in row.error, row.error
        assert row.traceback is not None and "Stack of the hung callback" in row.traceback
        assert "time.sleep(3600)" in row.traceback and "in behave" in row.traceback, row.traceback
        lines = _lines(d, "behave")
        hangs = [n for n in lines if n["event"] == 1]
        assert [n["attempt"] for n in hangs] == [1, 2] and all(n["mark"] == "S" for n in hangs)
        assert all(n["attempt"] == 1 for n in lines if n["event"] != 1), "an innocent event was charged an attempt"
        assert len({n["pid"] for n in lines}) >= 3, "the worker process was not replaced after each hang"
        steady_done = max(n["time"] for n in _lines(d, "steady") if n["mark"] == "E")
        assert steady_done < hangs[0]["time"] + 1.0, "the other plugin waited for the hung one"
        assert "timed out" in d.log()
        assert d.stop()[0] == 0


@pytest.mark.parametrize(("action", "reason"), [("exit", "exit code 1"), ("segv", "killed by SIGSEGV")])
def test_a_callback_that_kills_its_process_is_charged_while_the_daemon_and_other_events_carry_on(
    tmp_path: Path, action: str, reason: str
) -> None:
    config = _setup(tmp_path, [{"path": "behave.py", "max_attempts": 2}, {"path": "steady.py"}])
    with daemon(config) as d:
        d.start()
        d.wait_running()
        append(d.db, [_bad(1, 1), _bad(2, 2, action), _bad(3, 2), _bad(4, 3), _bad(5, 4)])
        wait_for(lambda: 2 in dead_letters(d.db, "behave"), 30, what="the culprit to be dead-lettered")
        _wait_finished(d, "behave", {1, 3, 4, 5})
        _wait_finished(d, "steady", {1, 2, 3, 4, 5})
        row = dead_letters(d.db, "behave")[2]
        assert row.attempts == 2
        assert row.error is not None and reason in row.error, row.error
        lines = _lines(d, "behave")
        assert [n["attempt"] for n in lines if n["event"] == 2] == [1, 2]
        assert all(n["attempt"] == 1 for n in lines if n["event"] != 2), "an innocent event was charged an attempt"
        assert len({n["pid"] for n in lines}) >= 3, "the worker process was not restarted"
        assert d.proc is not None and d.proc.poll() is None, "the daemon died with its worker"
        assert "the worker process died" in d.log()
        assert d.stop()[0] == 0


def test_a_leaking_plugin_gets_a_fresh_worker_above_its_memory_limit_and_loses_nothing(tmp_path: Path) -> None:
    config = _setup(tmp_path, [{"path": "behave.py", "max_memory_mb": 120}])
    with daemon(config) as d:
        d.start()
        d.wait_running()
        for number in range(1, 4):  # each keeps 40 MB: past the limit after the third
            append(d.db, [_bad(number, number % 3, "leak")])
            _wait_finished(d, "behave", {number})
        append(d.db, [_bad(number, number % 5) for number in range(4, 40)])  # flowing while it is recycled
        wait_for(lambda: "recycling it" in d.log(), 15, what="the worker to be recycled (RSS is sampled each second)")
        append(d.db, [_bad(number, number % 3, "leak") for number in range(40, 43)])
        _wait_finished(d, "behave", set(range(1, 43)))
        lines = _lines(d, "behave")
        assert len({n["pid"] for n in lines}) >= 2, "the worker was never recycled"
        assert "over its 120 MB limit: recycling it" in d.log()
        assert not dead_letters(d.db, "behave")
        assert all(n["attempt"] == 1 for n in lines)
        assert d.stop()[0] == 0
