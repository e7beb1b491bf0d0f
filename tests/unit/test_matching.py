"""What consumers match: the native Filter, shotgunEvents' matchEvents, and the type index."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from trackwire.core.event import Event, Ref
from trackwire.core.matching import Filter, Matcher, MatchEventsFilter, TypeIndex, lookup_path


def _event(
    type: str = "Shotgun_Task_Change",
    attribute: str | None = "sg_status_list",
    entity: Ref | None = None,
    project: Ref | None = None,
    **fields: Any,
) -> Event:
    return Event(
        source="shotgrid:test",
        source_id="1",
        type=type,
        attribute=attribute,
        entity=entity if entity is not None else Ref("Task", 5),
        project=project if project is not None else Ref("Project", 70, "Big Buck"),
        **fields,
    )


# -- the native filter -------------------------------------------------------------------------------


def test_a_default_filter_matches_every_event() -> None:
    assert Filter().matches(_event())
    assert Filter().matches(_event(type="anything", attribute=None))
    assert Filter().type_patterns() is None


def test_type_globs_match_by_fnmatch_and_exact_names_exactly() -> None:
    flt = Filter(types=("Shotgun_*_Change", "ftrack.update"))
    assert flt.matches(_event(type="Shotgun_Shot_Change"))
    assert flt.matches(_event(type="ftrack.update"))
    assert not flt.matches(_event(type="Shotgun_Shot_New"))
    assert not flt.matches(_event(type="ftrack.updated"))
    assert flt.type_patterns() == ("Shotgun_*_Change", "ftrack.update")


def test_type_globs_are_case_sensitive() -> None:
    assert not Filter(types=("shotgun_*",)).matches(_event(type="Shotgun_Task_Change"))


def test_an_empty_type_list_matches_nothing() -> None:
    assert not Filter(types=()).matches(_event())


def test_attribute_globs_need_an_event_attribute() -> None:
    flt = Filter(attributes=("sg_*",))
    assert flt.matches(_event(attribute="sg_status_list"))
    assert not flt.matches(_event(attribute="code"))
    assert not flt.matches(_event(attribute=None))


def test_entity_type_globs_need_an_entity() -> None:
    flt = Filter(entity_types=("Shot", "Asse?"))
    assert flt.matches(_event(entity=Ref("Shot", 1)))
    assert flt.matches(_event(entity=Ref("Asset", 1)))
    assert not flt.matches(_event(entity=Ref("Task", 1)))
    no_entity = Event(source="s", source_id="1", type="t")
    assert not flt.matches(no_entity)


def test_projects_match_by_id_or_name() -> None:
    assert Filter(projects=("70",)).matches(_event())
    assert Filter(projects=("Big Buck",)).matches(_event())
    assert not Filter(projects=("71", "Other")).matches(_event())
    assert not Filter(projects=("70",)).matches(Event(source="s", source_id="1", type="t"))


def test_an_empty_project_name_never_matches_a_project_without_a_name() -> None:
    assert not Filter(projects=("",)).matches(_event(project=Ref("Project", 70)))


def test_where_compares_dotted_paths_and_lists_mean_any_of() -> None:
    event = _event(new="fin", data={"meta": {"new_value": "fin", "tags": ["a", "b"]}})
    assert Filter(where=(("new", "fin"),)).matches(event)
    assert Filter(where=(("data.meta.new_value", ["ip", "fin"]),)).matches(event)
    assert Filter(where=(("new", ("ip", "fin")),)).matches(event)
    assert Filter(where=(("data.meta.tags.1", "b"), ("entity.type", "Task"))).matches(event)
    assert not Filter(where=(("new", "ip"),)).matches(event)
    assert not Filter(where=(("new", ["ip", "rev"]),)).matches(event)


def test_where_on_a_missing_path_does_not_match_even_none() -> None:
    event = _event(data={"meta": {}})
    assert not Filter(where=(("data.meta.absent", None),)).matches(event)
    assert not Filter(where=(("nosuchfield", None),)).matches(event)
    assert not Filter(where=(("data.meta.list.9", None),)).matches(_event(data={"meta": {"list": [1]}}))


def test_lookup_path_reads_envelope_fields_refs_and_data() -> None:
    event = _event(old="wtg", data={"a": [{"b": 1}]})
    assert lookup_path(event, "old") == "wtg"
    assert lookup_path(event, "entity") == {"type": "Task", "id": 5}
    assert lookup_path(event, "project.name") == "Big Buck"
    assert lookup_path(event, "data.a.0.b") == 1


# -- shotgunEvents' matchEvents -----------------------------------------------------------------------


def _me(value: Any) -> MatchEventsFilter:
    return MatchEventsFilter.from_mapping(value)


@pytest.mark.parametrize("empty", [None, {}])
def test_none_or_an_empty_dict_matches_every_event(empty: Any) -> None:
    flt = _me(empty)
    assert flt.matches(_event())
    assert flt.matches(_event(type="Shotgun_Shot_New", attribute=None))
    assert flt.type_patterns() is None


def test_a_type_with_an_attribute_list_needs_the_attribute_in_the_list() -> None:
    flt = _me({"Shotgun_Task_Change": ["sg_status_list", "content"]})
    assert flt.matches(_event(attribute="sg_status_list"))
    assert flt.matches(_event(attribute="content"))
    assert not flt.matches(_event(attribute="sg_status"))
    assert not flt.matches(_event(type="Shotgun_Shot_Change", attribute="sg_status_list"))


def test_an_event_without_an_attribute_never_matches_an_attribute_list() -> None:
    assert not _me({"Shotgun_Task_Change": ["sg_status_list"]}).matches(_event(attribute=None))
    assert not _me({"Shotgun_Task_Change": [""]}).matches(_event(attribute=""))


@pytest.mark.parametrize("spec", [None, "*", ["*"], ["code", "*"]])
def test_none_or_a_star_matches_any_attribute_of_that_type(spec: Any) -> None:
    flt = _me({"Shotgun_Shot_New": spec})
    assert flt.matches(_event(type="Shotgun_Shot_New", attribute=None))
    assert flt.matches(_event(type="Shotgun_Shot_New", attribute="code"))
    assert not flt.matches(_event(type="Shotgun_Shot_Change", attribute="code"))


def test_a_star_key_overrides_every_other_key() -> None:
    flt = _me({"Shotgun_Task_Change": None, "*": ["code"]})
    assert flt.matches(_event(type="Shotgun_Shot_Change", attribute="code"))
    # the Task key alone would match any Task attribute; with '*' present only its list applies
    assert not flt.matches(_event(type="Shotgun_Task_Change", attribute="sg_status_list"))
    assert flt.type_patterns() is None


def test_a_string_attribute_spec_is_a_substring_test() -> None:
    flt = _me({"Shotgun_Task_Change": "task_assignees"})
    assert flt.matches(_event(attribute="task_assignees"))
    assert flt.matches(_event(attribute="task"))
    assert flt.matches(_event(attribute="assign"))
    assert not flt.matches(_event(attribute="sg_status_list"))
    assert not flt.matches(_event(attribute=None))
    assert not flt.matches(_event(attribute=""))


def test_a_string_spec_containing_a_star_matches_any_attribute() -> None:
    assert _me({"Shotgun_Task_Change": "sg_*"}).matches(_event(attribute="content"))


def test_event_type_keys_are_compared_exactly_not_as_globs() -> None:
    flt = _me({"Shotgun_*_Change": None})
    assert not flt.matches(_event(type="Shotgun_Shot_Change"))
    assert TypeIndex([flt]).match(_event(type="Shotgun_Shot_Change")) == ()
    assert TypeIndex([flt]).match(_event(type="Shotgun_*_Change")) == (0,)


def test_type_patterns_list_the_keys() -> None:
    assert _me({"A": None, "B": ["x"]}).type_patterns() == ("A", "B")


@pytest.mark.parametrize(
    "bad",
    [
        ["Shotgun_Task_Change"],
        "Shotgun_Task_Change",
        {1: None},
        {"Shotgun_Task_Change": 5},
        {"Shotgun_Task_Change": object()},
    ],
)
def test_malformed_match_events_raise_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="matchEvents"):
        MatchEventsFilter.from_mapping(bad)


def test_sets_and_tuples_of_attribute_names_work_like_lists() -> None:
    assert _me({"Shotgun_Task_Change": ("content",)}).matches(_event(attribute="content"))
    assert _me({"Shotgun_Task_Change": {"content"}}).matches(_event(attribute="content"))


def _can_process(match_events: Any, event_type: str, attribute_name: str | None) -> bool:
    """shotgunEvents' Callback.canProcess, restated from its documented behaviour, for comparison."""
    if not match_events:
        return True
    if "*" in match_events:
        key = "*"
    else:
        key = event_type
        if key not in match_events:
            return False
    attributes = match_events[key]
    if attributes is None or "*" in attributes:
        return True
    return bool(attribute_name and attribute_name in attributes)


_TABLES: list[Any] = [
    None,
    {},
    {"Shotgun_Task_Change": ["sg_status_list"]},
    {"Shotgun_Task_Change": "task_assignees", "Shotgun_Shot_New": None},
    {"*": ["code", "sg_status_list"]},
    {"*": None, "Shotgun_Task_Change": ["x"]},
    {"Shotgun_Version_Change": ["*"], "Shotgun_Task_Change": "sg_status_list"},
    {"Shotgun_Task_Change": "*"},
]
_EVENTS = [
    (t, a)
    for t in ("Shotgun_Task_Change", "Shotgun_Shot_New", "Shotgun_Version_Change", "Other")
    for a in (None, "", "sg_status_list", "status", "code", "task", "x")
]


@pytest.mark.parametrize("table", _TABLES)
def test_match_events_agrees_with_can_process_on_every_combination(table: Any) -> None:
    flt = _me(table)
    index = TypeIndex([flt])
    for event_type, attribute in _EVENTS:
        expected = _can_process(table, event_type, attribute)
        event = _event(type=event_type, attribute=attribute)
        assert flt.matches(event) is expected, (table, event_type, attribute)
        assert (index.match(event) == (0,)) is expected, (table, event_type, attribute)


@pytest.mark.parametrize("table", _TABLES)
def test_lazy_matching_by_type_agrees_with_full_matching(table: Any) -> None:
    index = TypeIndex([_me(table), Filter(types=("Shotgun_*",)), Filter(attributes=("code",))])
    for event_type, attribute in _EVENTS:
        event = _event(type=event_type, attribute=attribute)

        def load(event: Event = event) -> Event:
            return event

        assert index.match_lazy(event_type, load) == index.match(event), (table, event)


# -- the type index -----------------------------------------------------------------------------------


@dataclass
class CountingMatcher:
    """A matcher that counts how often it is asked anything."""

    patterns: tuple[str, ...] | None
    accept: Callable[[Event], bool] = lambda event: True
    pattern_calls: int = 0
    match_calls: list[str] = field(default_factory=list)

    def type_patterns(self) -> tuple[str, ...] | None:
        self.pattern_calls += 1
        return self.patterns

    def matches(self, event: Event) -> bool:
        self.match_calls.append(event.type)
        return self.accept(event)


def test_the_index_finds_exact_and_glob_types_in_registration_order() -> None:
    matchers: list[Matcher] = [
        Filter(types=("Shotgun_Task_Change",)),
        Filter(types=("Shotgun_*",)),
        Filter(types=("ftrack.update",)),
        Filter(),
        Filter(types=("Shotgun_Task_Change", "Shotgun_Shot_New")),
        MatchEventsFilter.from_mapping({"Shotgun_Task_Change": ["sg_status_list"]}),
    ]
    index = TypeIndex(matchers)
    assert index.candidates("Shotgun_Task_Change") == (0, 1, 3, 4, 5)
    assert index.candidates("Shotgun_Shot_New") == (1, 3, 4)
    assert index.candidates("ftrack.update") == (2, 3)
    assert index.candidates("kitsu:task:update") == (3,)
    assert index.match(_event(attribute="content")) == (0, 1, 3, 4)
    assert index.match(_event(attribute="sg_status_list")) == (0, 1, 3, 4, 5)


def test_an_index_of_nothing_matches_nothing() -> None:
    assert TypeIndex([]).match(_event()) == ()


def test_dispatch_asks_only_the_consumers_of_the_event_type() -> None:
    matchers = [CountingMatcher((f"type.{n}",)) for n in range(1000)]
    index = TypeIndex(matchers)
    for _ in range(5):
        assert index.match(_event(type="type.500")) == (500,)
    assert matchers[500].match_calls == ["type.500"] * 5
    assert sum(len(m.match_calls) for m in matchers) == 5


def test_glob_patterns_are_evaluated_once_per_event_type_then_cached() -> None:
    globbed = [CountingMatcher((f"kind{n}.*",)) for n in range(200)]
    index = TypeIndex(globbed)
    first = index.candidates("kind7.update")
    assert first == (7,)
    # the answer is cached: the same tuple comes back without re-running the globs
    assert index.candidates("kind7.update") is first
    assert all(m.pattern_calls == 1 for m in globbed)
    assert index.match(_event(type="kind7.update")) == (7,)
    assert sum(len(m.match_calls) for m in globbed) == 1


def test_a_candidate_that_declines_the_event_is_left_out() -> None:
    picky = CountingMatcher(("t",), accept=lambda event: event.attribute == "x")
    index = TypeIndex([picky, CountingMatcher(None)])
    assert index.match(_event(type="t", attribute="y")) == (1,)
    assert index.match(_event(type="t", attribute="x")) == (0, 1)
