"""What an action sees: template variables computed only when a template names them, and events as the
log's JSON would give them back."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from trackwire.actions import ActionError
from trackwire.actions.base import ActionContext, TemplateVariables, events_json
from trackwire.actions.templating import render
from trackwire.core.event import Event, Ref, encode_event, loads


def test_a_template_that_does_not_name_the_events_does_not_encode_them() -> None:
    event = Event(source="t", source_id="1", type="Note", entity=Ref("Shot", 7), data={"frames": 3}, id=9)
    ctx = ActionContext("notify", {"id": "f1", "reason": "3 notes", "key": "7"}, (event,), event, "f1:0")
    variables = ctx.variables
    assert isinstance(variables, TemplateVariables)
    assert render({"text": "{{ automation }}: {{ reason }}"}, variables) == {"text": "notify: 3 notes"}
    assert "events" not in variables._values and "event" not in variables._values
    assert render("{{ event.entity.id }}/{{ count }}", variables) == "7/1"
    assert variables["event"] is variables["events"][0]
    full = ctx.template_vars()
    assert full["event"]["data"] == {"frames": 3} and full["key"] == "7"
    assert full["events"] is not ctx.template_vars()["events"]  # each plugin call gets its own copy


def test_an_unknown_template_name_still_fails_loudly() -> None:
    event = Event(source="t", source_id="1", type="Note", id=9)
    ctx = ActionContext("notify", {"id": "f1"}, (event,), event, "f1:0")
    with pytest.raises(ActionError, match="undefined"):
        render("{{ nope }}", ctx.variables)


def test_events_as_template_data_are_what_the_log_json_gives_back() -> None:
    odd = Event(
        source="s", source_id="1", type="T", id=3, entity=Ref("Shot", 1, "sh"), project=Ref("Project", 2),
        user=Ref("HumanUser", 3), old=(1,), new={"k": [1, {"z": 2}]}, received=datetime.now(UTC), follows=2,
        data={"a": (1, 2), "b": {"c": datetime.now(UTC)}, "d": date(2020, 1, 1), "e": {1: "x"}, "f": {"x"},
              "g": b"hi", "h": None, "i": 1.5, "j": True, "k": float("nan"), "l": [float("inf")]},
    )  # fmt: skip
    for event in (odd, Event(source="s", source_id="2", type="T", id=4)):
        expected = loads(encode_event(event))
        expected["occurred"] = event.occurred.isoformat()
        expected["received"] = event.received.isoformat() if event.received else None
        (got,) = events_json([event])
        assert got == expected
        assert got["data"] is not event.data
