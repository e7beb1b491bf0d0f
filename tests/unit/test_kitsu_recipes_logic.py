"""The recipes' tracker-free decisions, the Kitsu event mapping and the plugin API's entity cache."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from trackwire.plugins.kitsu import EntityCache, model_path
from trackwire.recipes.logic import (
    HandoffRule,
    SentLedger,
    copy_template,
    dailies_day,
    ensure_tree,
    handoff_for,
    render_path,
    template_file,
)
from trackwire.sources.kitsu import entity_type_name, to_event

PARIS = ZoneInfo("Europe/Paris")


def test_a_change_before_ten_joins_the_same_days_dailies_and_after_ten_the_next_days() -> None:
    assert dailies_day(datetime(2026, 11, 23, 8, 59, tzinfo=UTC), PARIS) == date(2026, 11, 23)  # 09:59 Paris
    assert dailies_day(datetime(2026, 11, 23, 9, 0, tzinfo=UTC), PARIS) == date(2026, 11, 24)  # 10:00 Paris
    assert dailies_day(datetime(2026, 11, 23, 23, 30, tzinfo=UTC), PARIS, time(9, 0)) == date(
        2026, 11, 24
    )  # 00:30 Paris


def test_folder_trees_are_created_once_and_never_leave_the_root(tmp_path: Path) -> None:
    values = {"project": "Moon Fall", "shot": "SH010"}
    created = ensure_tree(tmp_path, ["{project}/shots/{shot}", "{project}/editorial"], values)
    assert (tmp_path / "Moon_Fall" / "shots" / "SH010").is_dir() and len(created) == 2
    assert ensure_tree(tmp_path, ["{project}/shots/{shot}"], values) == []
    assert render_path("{project}", {"project": "../etc"}) == Path("etc")
    with pytest.raises(ValueError, match="leaves the root"):
        ensure_tree(tmp_path, ["../outside"], {})
    with pytest.raises(ValueError, match="sequence"):
        render_path("{sequence}", {})


def test_a_template_file_is_copied_once_and_an_artists_file_is_never_overwritten(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "Animation.ma").write_text("template")
    source = template_file(templates, "animation")
    assert source is not None and template_file(templates, "Lighting") is None
    target = tmp_path / "work" / "SH010_Animation_v001.ma"
    assert copy_template(source, target) is True
    target.write_text("artist's work")
    assert copy_template(source, target) is False
    assert target.read_text() == "artist's work"


def test_hand_off_rules_match_task_type_and_status_without_regard_to_case() -> None:
    rules = [HandoffRule("Animation", "done", "Lighting"), HandoffRule("Lighting", "done", "Compositing")]
    assert handoff_for(rules, "animation", "DONE") == rules[0]
    assert handoff_for(rules, "Animation", "wip") is None


def test_the_sent_ledger_remembers_notifications_across_instances(tmp_path: Path) -> None:
    SentLedger(tmp_path / "sent.jsonl").mark("event:person")
    ledger = SentLedger(tmp_path / "sent.jsonl")
    assert ledger.sent("event:person") and not ledger.sent("event:other")


def test_a_status_change_record_becomes_a_task_event_with_old_and_new_status() -> None:
    record = {
        "id": "e1",
        "created_at": "2026-11-23T18:04:30",
        "name": "task:status-changed",
        "user_id": "u1",
        "project_id": "p1",
        "data": {"task_id": "t1", "previous_task_status_id": "s0", "new_task_status_id": "s1", "project_id": "p1"},
    }
    event = to_event(record, "kitsu")
    assert (str(event.entity), str(event.project), str(event.user)) == ("Task:t1", "Project:p1", "Person:u1")
    assert (event.attribute, event.old, event.new, event.source_id) == ("task_status_id", "s0", "s1", "e1")
    assert event.occurred == datetime(2026, 11, 23, 18, 4, 30, tzinfo=UTC) and event.data == record
    cli = to_event(
        {
            "id": "e2",
            "created_at": "2026-11-23T18:04:30",
            "name": "person:new",
            "user_id": None,
            "project_id": None,
            "data": {"person_id": "x"},
        },
        "kitsu",
    )
    assert str(cli.entity) == "Person:x" and cli.project is None and cli.user is None


def test_entity_names_and_rest_collections_follow_zous_spelling() -> None:
    assert entity_type_name("preview-file") == "PreviewFile"
    assert model_path("PreviewFile") == "preview-files"
    assert model_path("TaskStatus") == "task-status"
    assert model_path("Task") == "tasks"


def test_the_entity_cache_is_shared_within_an_event_and_expires_with_max_age() -> None:
    now = [0.0]
    cache = EntityCache(clock=lambda: now[0])
    fetches: list[int] = []

    def fetch() -> dict[str, int]:
        fetches.append(1)
        return {"n": len(fetches)}

    key = ("Task", "t1")
    assert cache.get(key, fetch, event_id=1) == {"n": 1}
    assert cache.get(key, fetch, event_id=1) == {"n": 1}
    assert cache.get(key, fetch, event_id=2) == {"n": 2}
    now[0] = 10.0
    assert cache.get(key, fetch, event_id=3, max_age=60) == {"n": 2}
    now[0] = 100.0
    assert cache.get(key, fetch, event_id=3, max_age=60) == {"n": 3}
