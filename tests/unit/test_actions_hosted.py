"""The one action API, read from each tracker's invocation and answered in each tracker's shape."""

from __future__ import annotations

import pytest

from trackwire.actions.hosted import (
    Action,
    ActionError,
    Field,
    Invocation,
    Outcome,
    from_ftrack,
    from_kitsu,
    from_shotgrid,
    ftrack_discover_items,
    ftrack_reply,
)


def _handler(inv: Invocation) -> Outcome:
    values = inv.values or {}
    return Outcome(True, f"{inv.user_login} made {values.get('count')} on {','.join(map(str, inv.selected))}")


MAKE = Action(
    "make",
    "Make things",
    _handler,
    description="makes",
    icon="create",
    entity_types=("show", "Sequence"),
    form=(
        Field("count", "How many", "number", 3, required=True),
        Field("kind", "Kind", "enumerator", "a", (("A", "a"), ("B", "b"))),
    ),
)
PING = Action("ping", "Ping", lambda inv: "pong", entity_types=("*",), selection="one")


def _ftrack(topic: str, **data: object) -> dict[str, object]:
    user = {"id": "u1", "username": "jane@locovfx.com"}
    return {"id": "e1", "topic": topic, "source": {"id": "web", "user": user}, "data": data}


def test_discover_lists_only_the_actions_that_apply_to_the_selection() -> None:
    show = _ftrack("ftrack.action.discover", selection=[{"entityId": "p1", "entityType": "show"}])
    two_tasks = _ftrack(
        "ftrack.action.discover",
        selection=[{"entityId": "t1", "entityType": "task"}, {"entityId": "t2", "entityType": "task"}],
    )
    items = ftrack_discover_items([MAKE, PING], show)
    assert items is not None
    assert [i["actionIdentifier"] for i in items["items"]] == ["make", "ping"]
    assert items["items"][0] == {
        "label": "Make things",
        "description": "makes",
        "icon": "create",
        "actionIdentifier": "make",
    }
    assert ftrack_discover_items([MAKE, PING], two_tasks) is None  # ping wants one, make wants shows


def test_an_ftrack_launch_gets_a_form_then_runs_with_data_values() -> None:
    launch = _ftrack(
        "ftrack.action.launch", actionIdentifier="make", selection=[{"entityId": "p1", "entityType": "show"}]
    )
    form = ftrack_reply(MAKE, from_ftrack(launch))
    assert form["title"] == "Make things"
    assert [(i["type"], i["name"], i["value"]) for i in form["items"]] == [
        ("number", "count", 3),
        ("enumerator", "kind", "a"),
    ]
    assert form["items"][1]["data"] == [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]
    submitted = {**launch, "data": {**launch["data"], "values": {"count": "5", "kind": "b"}}}  # type: ignore[dict-item]
    assert ftrack_reply(MAKE, from_ftrack(submitted)) == {"success": True, "message": "jane@locovfx.com made 5 on p1"}
    wrong = {**launch, "data": {**launch["data"], "values": {"count": "5", "kind": "z"}}}  # type: ignore[dict-item]
    assert ftrack_reply(MAKE, from_ftrack(wrong))["success"] is False


def test_the_older_context_selection_is_read_too() -> None:
    old = _ftrack(
        "ftrack.action.launch",
        actionIdentifier="ping",
        context={"selection": [{"entityId": "v9", "entityType": "assetversion"}]},
    )
    inv = from_ftrack(old)
    assert (inv.entity_type, inv.selected) == ("assetversion", ("v9",))


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [("user_id", "1")],
        [("entity_type", "Shot")],
        [("entity_type", "Shot"), ("user_id", "x")],
        [("entity_type", "Shot"), ("user_id", "1"), ("selected_ids", "1,,two")],
        [("entity_type", "Shot"), ("user_id", "1"), ("project_id", "moon")],
    ],
)
def test_malformed_action_menu_posts_raise_action_error(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(ActionError):
        from_shotgrid("make", fields)


def test_an_action_menu_post_keeps_repeated_columns_and_reads_submitted_values() -> None:
    inv = from_shotgrid(
        "make",
        [
            ("entity_type", "Sequence"),
            ("selected_ids", "5,6"),
            ("user_id", "42"),
            ("user_login", "jane"),
            ("cols", "code"),
            ("cols", "description"),
            ("value.count", "2"),
        ],
    )
    assert inv.selected == (5, 6) and inv.user_id == 42 and inv.values == {"count": "2"}
    assert inv.payload["cols"] == ["code", "description"]


@pytest.mark.parametrize("body", [[], "x", {"selection": ["a"]}, {"entity_type": "Task", "selection": 5}])
def test_malformed_kitsu_posts_raise_action_error(body: object) -> None:
    with pytest.raises(ActionError):
        from_kitsu("make", body)
