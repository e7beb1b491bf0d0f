"""shotgunEvents plugins run unchanged: real worker processes, the real shotgun-api3 client, the fake site."""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.fakes.shotgrid_server import FakeShotgrid
from tests.integration.sg_support import FIXTURES, RunningDaemon, records, sg_settings

SCRIPTS = {"trackwire": "secret", "logargs": "k1", "status": "k2"}


@pytest.fixture
def fake() -> Iterator[FakeShotgrid]:
    server = FakeShotgrid(SCRIPTS, log_events=True).start()
    yield server
    server.stop()


@pytest.fixture
def record_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "record.jsonl"
    monkeypatch.setenv("SG_RECORD_FILE", str(path))
    monkeypatch.setenv("SGDAEMON_LOGARGS_NAME", "logargs")
    monkeypatch.setenv("SGDAEMON_LOGARGS_KEY", "k1")
    monkeypatch.setenv("SGDAEMON_STATUS_NAME", "status")
    monkeypatch.setenv("SGDAEMON_STATUS_KEY", "k2")
    return path


def by_event(path: Path) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for line in records(path):
        out[line["id"]].append(line["what"])
    return out


def test_example_style_plugins_run_unchanged_in_shotgunevents_order(
    tmp_path: Path, fake: FakeShotgrid, record_file: Path
) -> None:
    shot = fake.add_entity("Shot", code="SH010", sg_status_list="wtg")
    new_id = fake.add_event("Shotgun_Shot_New", entity={"type": "Shot", "id": shot["id"], "name": "SH010"})
    cut_id = fake.add_event(
        "Shotgun_Shot_Change",
        entity={"type": "Shot", "id": shot["id"], "name": "SH010"},
        attribute_name="sg_cut_in",
        meta={"type": "attribute_change", "attribute_name": "sg_cut_in", "old_value": 1001, "new_value": 1009},
        session_uuid="5f0c-uuid",
    )
    task_ids = {
        attr: fake.add_event("Shotgun_Task_Change", entity={"type": "Task", "id": 7}, attribute_name=attr)
        for attr in ("sg_status_list", "task", "content", "code")
    }
    settings = sg_settings(tmp_path, fake, FIXTURES / "examples", log_dir="plugin-logs", plugin={"concurrency": 4})
    with RunningDaemon(settings) as running:
        wait_for(lambda: "b_statusOnChange.setStatus" in by_event(record_file).get(cut_id, []), 60, what="plugins")
        # plugin c's create and plugin b's update are events themselves, which the daemon then delivers
        last = max(task_ids.values())
        wait_for(
            lambda: (
                len({r["id"] for r in records(record_file) if r["what"] == "a_logArgs.logArgs" and r["id"] > last}) >= 2
            ),
            30,
            what="the events caused by plugins b and c",
        )
        load_errors = list(running.daemon.runners["shotgunevents"].load_errors)

    seen = by_event(record_file)
    # order per event: files by name, then callbacks in registration order
    every = [w for w in seen[new_id] if not w.startswith("e_")]
    assert every == [
        "a_logArgs.logArgs",
        "c_createOnNew.createTask",
        "d_sharedState.first",
        "d_sharedState.second",
        "d_sharedState.third",
    ]
    assert seen[cut_id][:2] == ["a_logArgs.logArgs", "b_statusOnChange.setStatus"]

    # matchEvents forms, as shotgunEvents evaluates them
    forms = {eid: sorted(w.removeprefix("e_matchForms.") for w in seen[eid] if w.startswith("e_")) for eid in seen}
    assert forms[new_id] == ["empty", "type_none"]  # the '*' key wins: only its ['code'] list counts
    assert forms[task_ids["sg_status_list"]] == ["attr_list", "empty", "star_attr"]
    assert forms[task_ids["task"]] == ["empty", "star_attr", "substring"]  # 'task' in 'task_assignees'
    assert forms[task_ids["content"]] == ["empty", "star_attr"]
    assert forms[task_ids["code"]] == ["empty", "star_attr", "star_key"]

    # the event dict is exactly what shotgunEvents passed
    first = next(r for r in records(record_file) if r["what"] == "a_logArgs.logArgs" and r["id"] == new_id)
    assert first["keys"] == sorted(
        [
            "type", "id", "event_type", "attribute_name", "meta", "entity", "user", "project", "session_uuid",
            "created_at",
        ]
    )  # fmt: skip
    assert first["tz"] == "LocalTimezone" and first["aware"] is True
    assert first["has_sg"] is True and first["logger"] == "plugin.a_logArgs.logArgs"

    # plugins wrote through their own script credentials, with the causing session's uuid
    assert fake.tables["Shot"][shot["id"]]["sg_status_list"] == "rdy"
    assert [t["content"] for t in fake.tables["Task"].values()] == ["Layout"]
    assert "5f0c-uuid" in fake.session_uuids

    # shared state through args: the three callable objects saw each event in order
    shared = [r for r in records(record_file) if r["what"].startswith("d_sharedState.")]
    assert [r["seen"] for r in shared if r["id"] == new_id] == sorted(r["seen"] for r in shared if r["id"] == new_id)

    # the malformed plugin is disabled with an error naming its file; nothing else stopped
    assert len(load_errors) == 1 and "f_badMatch.py" in load_errors[0] and "matchEvents" in load_errors[0]

    # per-plugin log files (shotgunEvents' logMode 1)
    log_file = tmp_path / "plugin-logs" / "plugin.a_logArgs"
    assert log_file.exists() and "Shotgun_Shot_New" in log_file.read_text()


def test_a_failing_plugin_is_deactivated_alone_and_replays_from_its_failed_event_when_its_file_changes(
    tmp_path: Path, fake: FakeShotgrid, record_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "plugins"
    shutil.copytree(FIXTURES / "failing", plugins)
    flag = tmp_path / "fail-flag"
    flag.touch()
    monkeypatch.setenv("SG_FAIL_FLAG", str(flag))
    ids = [fake.add_event(entity={"type": "Shot", "id": shot}, attribute_name="code") for shot in (11, 12, 13, 14)]
    settings = sg_settings(tmp_path, fake, plugins)
    with RunningDaemon(settings):
        wait_for(lambda: set(ids) <= {r["id"] for r in records(record_file) if r["what"] == "steady.steady"}, 60)
        after = fake.add_event(entity={"type": "Shot", "id": 15}, attribute_name="code")
        wait_for(lambda: after in {r["id"] for r in records(record_file) if r["what"] == "steady.steady"}, 30)
        got = by_event(record_file)
        assert "brittle.fragile" not in got[ids[2]]  # failed on shot 13
        assert "brittle.before" not in got[after]  # the whole plugin is off, not only the callback
        assert "brittle.fragile" not in got[ids[3]]

        flag.unlink()  # the fix ...
        time.sleep(0.05)
        os.utime(plugins / "brittle.py")  # ... and the file changes: the plugin resumes from shot 13
        wait_for(
            lambda: (
                {ids[2], ids[3], after} <= {r["id"] for r in records(record_file) if r["what"] == "brittle.fragile"}
            ),
            60,
            what="the replay of the missed events",
        )
    fragile = [r["id"] for r in records(record_file) if r["what"] == "brittle.fragile"]
    assert fragile[:2] == ids[:2]
    assert sorted(fragile[2:]) == [ids[2], ids[3], after]
    steady = [r["id"] for r in records(record_file) if r["what"] == "steady.steady"]
    assert sorted(set(steady)) == sorted([*ids, after])


def test_the_retry_policy_retries_a_failing_callback_and_never_deactivates_the_plugin(
    tmp_path: Path, fake: FakeShotgrid, record_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "plugins"
    shutil.copytree(FIXTURES / "failing", plugins)
    flag = tmp_path / "fail-flag"
    flag.touch()
    monkeypatch.setenv("SG_FAIL_FLAG", str(flag))
    ids = [fake.add_event(entity={"type": "Shot", "id": shot}, attribute_name="code") for shot in (12, 13, 14)]
    settings = sg_settings(tmp_path, fake, plugins, plugin={"policy": "retry", "concurrency": 2})
    settings = settings.model_copy(
        update={"engine": settings.engine.model_copy(update={"backoff_base": 0.05, "backoff_cap": 0.2})}
    )
    with RunningDaemon(settings) as running:
        wait_for(lambda: {ids[0], ids[2]} <= {r["id"] for r in records(record_file) if r["what"] == "brittle.fragile"})
        wait_for(lambda: running.daemon.runners["shotgunevents"].stats.retried >= 1, 30, what="a retry")
        flag.unlink()
        wait_for(lambda: ids[1] in {r["id"] for r in records(record_file) if r["what"] == "brittle.fragile"}, 30)
        assert running.daemon.runners["shotgunevents"].deactivated is None
