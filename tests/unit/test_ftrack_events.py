"""Turning ftrack hub events into log events: one per entity change, the original kept, ids for dedupe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackwire.core.event import Ref
from trackwire.sources.ftrack import GAP_TYPE, events_from_ftrack, gap_event

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ftrack"


def _update() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "update_status.json").read_text())
    return loaded


def test_each_entity_change_becomes_its_own_event_keyed_by_the_ftrack_id() -> None:
    raw = _update()
    events = events_from_ftrack(raw, "ftrack")
    assert [e.source_id for e in events] == [raw["id"], raw["id"] + "#1"]
    assert [e.type for e in events] == ["ftrack.update", "ftrack.update"]
    assert events[0].entity == Ref("task", "2d2f9a3c-1111-11ee-8b5e-0242ac120002")
    assert events[1].entity == Ref("assetversion", "f0e1d2c3-3333-11ee-8b5e-0242ac120002")


def test_project_user_and_the_single_changed_key_are_filled_from_the_payload() -> None:
    task, version = events_from_ftrack(_update(), "ftrack")
    assert task.project == Ref("Project", "6c3a2e1e-0f0f-11ee-8b5e-0242ac120002")
    assert task.user == Ref("User", "a1c5e2d4-1234-11ee-8b5e-0242ac120002", "jane.doe@locovfx.com")
    assert (task.attribute, task.old, task.new) == (
        "statusid",
        "44dd9fb2-4164-11df-9218-0019bb4983d8",
        "44de097a-4164-11df-9218-0019bb4983d8",
    )
    assert version.attribute is None and version.data["keys"] == ["statusid", "comment"]


def test_the_original_event_is_kept_whole_in_data() -> None:
    raw = _update()
    for index, event in enumerate(events_from_ftrack(raw, "ftrack")):
        assert event.data["ftrack"] == raw
        assert event.data["index"] == index


def test_an_event_without_entities_is_one_event_without_an_entity() -> None:
    raw = {"id": "abc", "topic": "ftrack.action.launch", "data": {"actionIdentifier": "x"}, "source": {}}
    (event,) = events_from_ftrack(raw, "ftrack")
    assert event.entity is None and event.source_id == "abc" and event.data["ftrack"] == raw


def test_a_gap_event_says_from_when_to_when_events_may_be_lost() -> None:
    since, until = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 11, tzinfo=UTC)
    event = gap_event("ftrack", since, until, "disconnected")
    assert event.type == GAP_TYPE
    assert event.data == {"since": since.isoformat(), "until": until.isoformat(), "reason": "disconnected"}
