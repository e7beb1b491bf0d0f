"""The one action API, read from each tracker's invocation and answered in each tracker's shape."""

from __future__ import annotations

from typing import Any

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


def test_comma_separated_columns_read_like_repeated_ones() -> None:
    fields = [("entity_type", "Shot"), ("selected_ids", "5"), ("user_login", "jane"), ("cols", "code, sg_status_list")]
    inv = from_shotgrid("make", [*fields, ("column_display_names", "Shot, Final"), ("page_id", "1353")])
    assert inv.payload["cols"] == ["code", "sg_status_list"]
    assert inv.payload["column_display_names"] == ["Shot, Final"]  # display names are never split
    assert inv.payload["page_id"] == "1353"


TASK_A, TASK_B = "0e4f8d52-1c5e-4c39-9b8e-6d3a1f2b7c10", "7b1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
PERSON, PROJECT = "3f6b8a2c-9d1e-4f70-8a5b-2c3d4e5f6a7b", "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"

# Kitsu's hidden form (is_ajax false) and its JSON post (is_ajax true), per cgwire/kitsu's ActionPanel.vue.
KITSU_FORM = [
    ("personid", PERSON),
    ("personemail", "jane@locovfx.com"),
    ("projectid", PROJECT),
    ("currentpath", f"/productions/{PROJECT}/shots"),
    ("currentserver", "kitsu.locovfx.com"),
    ("selection", f"{TASK_A},{TASK_B}"),
    ("entitytype", "shot"),
]
KITSU_JSON = {
    "entitytype": "shot",
    "originurl": f"/productions/{PROJECT}/shots",
    "originserver": "kitsu.locovfx.com",
    "selection": [TASK_A, TASK_B],
    "productionid": PROJECT,
    "userid": PERSON,
    "useremail": "jane@locovfx.com",
}


@pytest.mark.parametrize("body", [KITSU_FORM, dict(KITSU_FORM), KITSU_JSON])
def test_kitsu_form_and_json_posts_read_the_same(body: Any) -> None:
    inv = from_kitsu("make", body)
    assert (inv.tracker, inv.entity_type, inv.selected) == ("kitsu", "Task", (TASK_A, TASK_B))
    assert (inv.user_id, inv.user_login, inv.project_id, inv.values) == (PERSON, "jane@locovfx.com", PROJECT, None)
    assert inv.payload["entitytype"] == "shot"


def test_a_kitsu_form_posted_back_carries_its_values() -> None:
    inv = from_kitsu("make", [*KITSU_FORM, ("submitted", "1"), ("value.path", "/dailies/a.mov")])
    assert inv.values == {"path": "/dailies/a.mov"} and "value.path" not in inv.payload


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"selection": [TASK_A], "entitytype": "shot"},  # nobody
        {"personid": PERSON, "entitytype": "shot"},  # no selection
        {"personid": PERSON, "selection": TASK_A},  # no entitytype
        {"personid": PERSON, "selection": "not-a-uuid", "entitytype": "shot"},
        {"personid": PERSON, "selection": 5, "entitytype": "shot"},
        {"personid": PERSON, "selection": [5], "entitytype": "shot"},
        {"personid": ["x"], "selection": [TASK_A], "entitytype": "shot"},
        {"userid": PERSON, "selection": [TASK_A], "entitytype": "shot", "values": [1]},
    ],
)
def test_malformed_kitsu_posts_raise_action_error(body: Any) -> None:
    with pytest.raises(ActionError):
        from_kitsu("make", body)
