"""ftrack's subscription expression language: a table of matches and non-matches, checked against ftrack's parser."""

from __future__ import annotations

from typing import Any

import pytest

from trackwire.core.ftrack_expr import All, AnyOf, Condition, ExpressionError, FtrackMatcher, Not, parse

UPDATE: dict[str, Any] = {
    "id": "5a1c9d3e0f8b4d2a9c7e6b5a4f3e2d1c",
    "topic": "ftrack.update",
    "data": {
        "user": {"userid": "d2b5", "name": "Jane Doe"},
        "entities": [{"action": "update", "entityType": "task", "keys": ["statusid"]}],
        "parents": ["a", "b"],
        "count": 3,
        "version": "v012",
    },
    "source": {"id": "0bd4", "user": {"id": "d2b5", "username": "jane.doe@studio.com"}},
    "target": "",
}
LAUNCH: dict[str, Any] = {
    "topic": "ftrack.action.launch",
    "data": {"actionIdentifier": "batch-create-shots", "selection": [{"entityId": "e1", "entityType": "show"}]},
    "source": {"user": {"username": "jane.doe@studio.com"}},
}

# (expression, event, expected)
TABLE: list[tuple[str, dict[str, Any], bool]] = [
    ("topic=ftrack.update", UPDATE, True),
    ("topic=ftrack.action.launch", UPDATE, False),
    ("topic!=ftrack.update", UPDATE, False),
    ("topic!=ftrack.action.launch", UPDATE, True),
    # `*` is a substring test on `=`, not a prefix test
    ("topic=ftrack.*", UPDATE, True),
    ("topic=ftrack.*", LAUNCH, True),
    ("topic=ftrack.action.*", UPDATE, False),
    ("topic=*", UPDATE, True),
    ("topic=update*", UPDATE, True),
    ("topic=rack.upd*", UPDATE, True),
    ("topic=ftrack.update.*", UPDATE, False),
    ("topic=*update", UPDATE, False),
    ('topic="ftrack.*"', LAUNCH, True),
    ("topic!=ftrack.*", UPDATE, True),  # `*` is literal for `!=`
    # a wildcard on a list tests membership, as `in` does
    ("data.parents=a*", UPDATE, True),
    ("data.parents=ab*", UPDATE, False),
    # nested paths, quoted values with spaces, missing keys
    ('data.user.name="Jane Doe"', UPDATE, True),
    ("data.user.name='Jane Doe'", UPDATE, True),
    ('data.user.name="John Doe"', UPDATE, False),
    ("source.user.username=jane.doe@studio.com", UPDATE, True),
    ("source.user.username=jane*", UPDATE, True),
    ("data.missing.key=x", UPDATE, False),
    ("data.missing!=x", UPDATE, False),  # a missing key is false even for `!=`
    ("topic.deeper=x", UPDATE, False),  # walking into a string is a missing key
    ("data.user.name=Jane*", LAUNCH, False),
    # values are strings: no coercion, and odd comparisons are false instead of raising
    ("data.count=3", UPDATE, False),
    ("data.count!=3", UPDATE, True),
    ("data.version>v010", UPDATE, True),
    ("data.version<=v010", UPDATE, False),
    ("data.version>=v012", UPDATE, True),
    ("data.version<v013", UPDATE, True),
    # and / or / not, any case, with precedence not > and > or, and parentheses
    ("topic=ftrack.update and source.user.username=jane.doe@studio.com", UPDATE, True),
    ("topic=ftrack.update AND source.user.username=john@studio.com", UPDATE, False),
    ("topic=ftrack.action.launch or topic=ftrack.update", UPDATE, True),
    ("topic=ftrack.action.launch Or topic=ftrack.action.discover", UPDATE, False),
    ("not topic=ftrack.update", UPDATE, False),
    ("NOT topic=ftrack.action.launch", UPDATE, True),
    ("not not topic=ftrack.update", UPDATE, True),
    ("topic=x or topic=ftrack.update and data.user.name=nobody", UPDATE, False),
    ("(topic=x or topic=ftrack.update) and data.user.name='Jane Doe'", UPDATE, True),
    ("topic=ftrack.update and not (data.user.name=x or data.user.name=y)", UPDATE, True),
    ("topic=ftrack.update and (not data.user.name='Jane Doe')", UPDATE, False),
    (" ( ( topic = ftrack.update ) ) ", UPDATE, True),
    (
        "topic=ftrack.action.launch and data.actionIdentifier=batch-create-shots"
        " and source.user.username=jane.doe@studio.com",
        LAUNCH,
        True,
    ),
    ("topic=ftrack.action.launch and data.actionIdentifier=clear-job-queue", LAUNCH, False),
    ("notes=1", {"notes": "1"}, True),  # a field may start with a keyword
]


@pytest.mark.parametrize(("expression", "event", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_each_expression_matches_exactly_the_events_it_should(
    expression: str, event: dict[str, Any], expected: bool
) -> None:
    assert parse(expression).match(event) is expected


@pytest.mark.parametrize(("expression", "event", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_ftracks_own_parser_agrees_with_every_row_of_the_table(
    expression: str, event: dict[str, Any], expected: bool
) -> None:
    ftrack_expression = pytest.importorskip("ftrack_api.event.expression")
    try:
        theirs = ftrack_expression.Parser().parse(expression).match(event)
    except TypeError:
        theirs = False  # where ftrack raises, we answer "no match" on purpose
    assert theirs is expected


def test_precedence_builds_the_tree_ftrack_builds() -> None:
    tree = parse("a=1 or not b=2 and c=3")
    b_and_c = All((Not(Condition(("b",), "=", "2")), Condition(("c",), "=", "3")))
    assert tree == AnyOf((Condition(("a",), "=", "1"), b_and_c))


def test_a_quoted_wildcard_value_keeps_its_star() -> None:
    assert parse('topic="ftrack.*"') == Condition(("topic",), "=", "ftrack.*")


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "topic",
        "topic=",
        "=ftrack.update",
        "topic==ftrack.update",
        "topic=ftrack.update and",
        "and topic=ftrack.update",
        "(topic=ftrack.update",
        "topic=ftrack.update)",
        "topic=ftrack update",
        "data.entities any (entityType=task)",
        "topic~ftrack",
        'topic="unterminated',
    ],
)
def test_malformed_expressions_are_rejected_with_a_reason(expression: str) -> None:
    with pytest.raises(ExpressionError):
        parse(expression)


@pytest.mark.parametrize(
    ("expression", "patterns"),
    [
        ("topic=ftrack.update", ("ftrack.update",)),
        ("topic=ftrack.action.* and source.user.username=x", ("*ftrack.action.*",)),
        ("topic=ftrack.update or topic=ftrack.action.launch", ("ftrack.update", "ftrack.action.launch")),
        ("topic=ftrack.update or data.x=1", None),
        ("not topic=ftrack.update", None),
        ("source.user.username=x", None),
        ('topic="odd[?]"', ("odd[[][?]]",)),
    ],
)
def test_the_topics_an_expression_can_match_narrow_the_events_its_group_reads(
    expression: str, patterns: tuple[str, ...] | None
) -> None:
    assert FtrackMatcher((parse(expression),)).type_patterns() == patterns


def test_the_topic_globs_agree_with_the_expression_on_real_topics() -> None:
    import fnmatch

    topics = ["ftrack.update", "ftrack.action.launch", "ftrack.action.discover", "trackwire.ftrack.gap", "x.ftrack"]
    for expression in ["topic=ftrack.*", "topic=ftrack.update", "topic=action* or topic=gap*"]:
        parsed = parse(expression)
        globs = FtrackMatcher((parsed,)).type_patterns() or ("*",)
        for topic in topics:
            if parsed.match({"topic": topic}):
                assert any(fnmatch.fnmatchcase(topic, g) for g in globs), (expression, topic)
