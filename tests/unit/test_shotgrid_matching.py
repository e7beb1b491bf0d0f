"""matchEvents is evaluated exactly as shotgunEvents' Callback.canProcess does."""

from __future__ import annotations

from typing import Any

import pytest

from trackwire.core.event import Event
from trackwire.core.matching import MatchEventsFilter


def ev(event_type: str, attribute: str | None) -> Event:
    return Event(source="shotgrid", source_id="1", type=event_type, attribute=attribute)


CASES: list[tuple[Any, str, str | None, bool]] = [
    (None, "Shotgun_Shot_New", None, True),
    ({}, "Shotgun_Shot_New", None, True),
    ({"Shotgun_Task_Change": ["sg_status_list"]}, "Shotgun_Task_Change", "sg_status_list", True),
    ({"Shotgun_Task_Change": ["sg_status_list"]}, "Shotgun_Task_Change", "content", False),
    ({"Shotgun_Task_Change": ["sg_status_list"]}, "Shotgun_Shot_Change", "sg_status_list", False),
    ({"Shotgun_Task_Change": ["sg_status_list"]}, "Shotgun_Task_Change", None, False),
    ({"Shotgun_Shot_New": None}, "Shotgun_Shot_New", None, True),
    ({"Shotgun_Task_Change": "*"}, "Shotgun_Task_Change", "anything", True),
    ({"Shotgun_Task_Change": ["code", "*"]}, "Shotgun_Task_Change", None, True),
    ({"*": ["code"], "Shotgun_Task_Change": None}, "Shotgun_Task_Change", "sg_status_list", False),
    ({"*": ["code"], "Shotgun_Task_Change": None}, "Shotgun_Shot_Change", "code", True),
    ({"*": None}, "Anything_At_All", None, True),
    ({"Shotgun_Task_Change": "task_assignees"}, "Shotgun_Task_Change", "task", True),
    ({"Shotgun_Task_Change": "task_assignees"}, "Shotgun_Task_Change", "task_assignees", True),
    ({"Shotgun_Task_Change": "task_assignees"}, "Shotgun_Task_Change", "sg_status_list", False),
    ({"Shotgun_Task_Change": "task_assignees"}, "Shotgun_Task_Change", "", False),
    ({"Shotgun_Task_Change": "a*b"}, "Shotgun_Task_Change", "zzz", True),
    ({"Shotgun_Task_Change": {"sg_status_list", "code"}}, "Shotgun_Task_Change", "code", True),
    ({"Shotgun_Task_Change": [None]}, "Shotgun_Task_Change", None, False),
]


@pytest.mark.parametrize(("match_events", "event_type", "attribute", "expected"), CASES)
def test_match_events_decides_like_shotgunevents(
    match_events: Any, event_type: str, attribute: str | None, expected: bool
) -> None:
    assert MatchEventsFilter.from_mapping(match_events).matches(ev(event_type, attribute)) is expected


@pytest.mark.parametrize("bad", [["Shotgun_Task_Change"], "Shotgun_Task_Change", {"Shotgun_Task_Change": 5}, {3: None}])
def test_a_malformed_match_events_is_refused_with_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="matchEvents"):
        MatchEventsFilter.from_mapping(bad)


def test_type_patterns_let_the_index_skip_other_types_unless_a_star_key_is_present() -> None:
    assert MatchEventsFilter.from_mapping({"Shotgun_Shot_New": None}).type_patterns() == ("Shotgun_Shot_New",)
    assert MatchEventsFilter.from_mapping({"*": None, "Shotgun_Shot_New": None}).type_patterns() is None
    assert MatchEventsFilter.from_mapping(None).type_patterns() is None
