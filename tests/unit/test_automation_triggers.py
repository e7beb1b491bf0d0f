"""Every trigger form, evaluated as pure logic with a fake clock, including late and out-of-order events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackwire.core.clock import ManualClock
from trackwire.core.event import Event, Ref
from trackwire.core.triggers import (
    Automation,
    CompoundTrigger,
    Evaluator,
    EventTrigger,
    Firing,
    LabelSpec,
    SequenceTrigger,
    parse_predicate,
)
from trackwire.core.triggers.predicates import PredicateError

T0 = 1_700_000_000.0


def ev(ident: int, kind: str, at: float, shot: int = 1, **extra: Any) -> Event:
    data = extra.pop("data", {})
    return Event(
        source="test",
        source_id=str(ident),
        type=kind,
        entity=Ref("Shot", shot),
        project=Ref("Project", 7, "demo"),
        occurred=datetime.fromtimestamp(T0 + at, UTC),
        data=data,
        id=ident,
        **extra,
    )


def one(trigger: Any, name: str = "a", **kw: Any) -> Evaluator:
    return Evaluator([Automation(name, trigger)], **kw)


def feed(evaluator: Evaluator, events: list[Event], clock: ManualClock) -> list[Firing]:
    out: list[Firing] = []
    for event in events:
        out.extend(evaluator.on_event(event, clock.time()))
    return out


def test_an_immediate_reactive_trigger_fires_on_every_matching_event() -> None:
    clock = ManualClock(T0)
    e = one(EventTrigger(expect=("Shotgun_Shot_Change",)))
    fired = feed(e, [ev(1, "Shotgun_Shot_Change", 0), ev(2, "Other", 1), ev(3, "Shotgun_Shot_Change", 2)], clock)
    assert [f.events for f in fired] == [(1,), (3,)]
    assert not e.state


def test_a_threshold_fires_when_n_events_fall_within_the_window_per_for_each_key() -> None:
    clock = ManualClock(T0)
    trig = EventTrigger(expect=("note",), threshold=3, within=60, for_each=("entity.id",))
    e = one(trig)
    events = [ev(1, "note", 0, shot=1), ev(2, "note", 10, shot=2), ev(3, "note", 20, shot=1), ev(4, "note", 90, shot=1)]
    assert feed(e, events, clock) == []
    fired = feed(e, [ev(5, "note", 100, shot=1), ev(6, "note", 101, shot=1)], clock)
    assert [(f.key, f.events) for f in fired] == [("1", (4, 5, 6))]


def test_out_of_order_events_still_count_in_their_event_time_window() -> None:
    clock = ManualClock(T0)
    e = one(EventTrigger(expect=("note",), threshold=3, within=30))
    fired = feed(e, [ev(3, "note", 25), ev(1, "note", 0), ev(2, "note", 12)], clock)
    assert [f.events for f in fired] == [(1, 2, 3)]


def test_events_later_than_the_allowed_lateness_are_ignored_and_explained() -> None:
    notes: list[str] = []
    e = one(EventTrigger(expect=("note",), threshold=2, within=10), lateness=5, trace=notes.append)
    clock = ManualClock(T0)
    assert feed(e, [ev(1, "note", 100), ev(2, "note", 50)], clock) == []
    assert any("allowed lateness" in n for n in notes)


def test_reactive_after_counts_only_inside_the_window_it_opens() -> None:
    clock = ManualClock(T0)
    trig = EventTrigger(after=("start",), expect=("step",), threshold=2, within=60)
    e = one(trig)
    assert feed(e, [ev(1, "step", 0), ev(2, "start", 5), ev(3, "step", 10), ev(4, "step", 80)], clock) == []
    fired = feed(e, [ev(5, "start", 100), ev(6, "step", 110), ev(7, "step", 120)], clock)
    assert [f.events for f in fired] == [(6, 7)]


def test_a_proactive_trigger_fires_when_the_expected_event_does_not_follow_in_time() -> None:
    clock = ManualClock(T0)
    trig = EventTrigger(
        after=("submitted",), expect=("approved",), posture="proactive", within=60, for_each=("entity.id",)
    )
    e = one(trig, lateness=10)
    feed(e, [ev(1, "submitted", 0, shot=1), ev(2, "submitted", 0, shot=2), ev(3, "approved", 30, shot=2)], clock)
    clock.advance(65)
    assert e.sweep(clock.time()) == []
    clock.advance(10)
    fired = e.sweep(clock.time())
    assert [(f.key, f.events) for f in fired] == [("1", (1,))]
    clock.advance(1000)
    assert e.sweep(clock.time()) == []


def test_a_late_expected_event_inside_the_allowed_lateness_prevents_a_false_alarm() -> None:
    clock = ManualClock(T0)
    trig = EventTrigger(after=("submitted",), expect=("approved",), posture="proactive", within=60)
    e = one(trig, lateness=30)
    feed(e, [ev(1, "submitted", 0)], clock)
    clock.advance(70)
    assert e.sweep(clock.time()) == []
    feed(e, [ev(2, "approved", 50)], clock)
    clock.advance(100)
    assert e.sweep(clock.time()) == []


def test_a_heartbeat_trigger_fires_once_per_silence_per_key() -> None:
    clock = ManualClock(T0)
    trig = EventTrigger(expect=("beat",), posture="proactive", within=30, for_each=("entity.id",))
    e = one(trig, lateness=0)
    feed(e, [ev(1, "beat", 0), ev(2, "beat", 20), ev(3, "beat", 40)], clock)
    clock.advance(60)
    assert e.sweep(clock.time()) == []
    clock.advance(20)
    fired = e.sweep(clock.time())
    assert [f.window for f in fired] == [(T0 + 40, T0 + 70)]


def test_a_proactive_trigger_without_after_or_for_each_checks_back_to_back_windows() -> None:
    clock = ManualClock(T0)
    e = one(EventTrigger(expect=("render",), posture="proactive", threshold=2, within=10), lateness=0)
    e.start(clock.time())
    feed(e, [ev(1, "render", 1), ev(2, "render", 2), ev(3, "render", 15)], clock)
    clock.advance(35)
    fired = e.sweep(clock.time())
    assert [f.window for f in fired] == [(T0 + 10, T0 + 20), (T0 + 20, T0 + 30)]


def test_match_uses_globs_with_negation_and_match_related_checks_roles() -> None:
    clock = ManualClock(T0)
    trig = EventTrigger(
        expect=("Shotgun_*_Change",),
        match=LabelSpec.parse({"entity.type": ["Shot*", "!Shot_test*"], "attribute": "sg_status_list"}),
        match_related=(LabelSpec.parse({"role": "project", "name": "!archive*"}),),
    )
    e = one(trig)
    good = ev(1, "Shotgun_Shot_Change", 0, attribute="sg_status_list")
    wrong_attr = ev(2, "Shotgun_Shot_Change", 0, attribute="code")
    archived = Event(**{**_fields(good), "id": 3, "project": Ref("Project", 1, "archive_2019")})
    assert [f.events for f in feed(e, [good, wrong_attr, archived], clock)] == [(1,)]


def _fields(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in Event.__slots__}


def test_payload_predicates_combine_with_and_or_not() -> None:
    clock = ManualClock(T0)
    where = parse_predicate(
        {
            "all": [
                {"path": "new", "op": "in", "value": ["apr", "fin"]},
                {
                    "any": [
                        {"path": "data.frames", "op": "gt", "value": 100},
                        {"path": "data.tag", "op": "regex", "value": "^hero"},
                    ]
                },
                {"not": {"path": "user.name", "op": "istartswith", "value": "BOT"}},
            ]
        }
    )
    e = one(EventTrigger(expect=("x",), where=where))
    events = [
        ev(1, "x", 0, new="apr", data={"frames": 200}, user=Ref("User", 1, "ana")),
        ev(2, "x", 0, new="apr", data={"frames": 2, "tag": "hero_a"}, user=Ref("User", 1, "bot-x")),
        ev(3, "x", 0, new="ip", data={"frames": 200}),
        ev(4, "x", 0, new="fin", data={"frames": 2, "tag": "heroic"}),
        ev(5, "x", 0, new="fin", data={"frames": 2}),
    ]
    assert [f.events for f in feed(e, events, clock)] == [(1,), (4,)]


def test_timediff_exists_and_string_operators_follow_stackstorm() -> None:
    now = T0 + 100
    event = ev(1, "x", 0, data={"at": datetime.fromtimestamp(T0 + 90, UTC).isoformat(), "name": "Hero_Shot"})
    assert parse_predicate({"path": "data.at", "op": "timediff_lt", "value": 30}).holds(event, now)
    assert not parse_predicate({"path": "data.at", "op": "td_gt", "value": 30}).holds(event, now)
    assert parse_predicate({"path": "data.missing", "op": "nexists"}).holds(event, now)
    assert parse_predicate({"path": "data.name", "op": "iendswith", "value": "SHOT"}).holds(event, now)
    assert parse_predicate({"path": "data.name", "op": "contains", "value": "o_S"}).holds(event, now)
    with pytest.raises(PredicateError, match=r"where\.any\[0\]\.op: unknown operator"):
        parse_predicate({"any": [{"path": "a", "op": "nope", "value": 1}]})


def test_a_compound_trigger_fires_when_enough_children_fire_within_its_window() -> None:
    clock = ManualClock(T0)
    children = (EventTrigger(expect=("a",)), EventTrigger(expect=("b",)), EventTrigger(expect=("c",)))
    e = one(CompoundTrigger(children, require=2, within=60))
    assert feed(e, [ev(1, "a", 0), ev(2, "c", 100)], clock) == []
    fired = feed(e, [ev(3, "b", 130)], clock)
    assert [f.events for f in fired] == [(2, 3)]
    all_of = one(CompoundTrigger(children, require=3, within=60), name="b")
    assert feed(all_of, [ev(4, "a", 0), ev(5, "b", 1)], clock) == []
    assert [f.events for f in feed(all_of, [ev(6, "c", 2)], clock)] == [(4, 5, 6)]


def test_a_compound_trigger_with_for_each_children_joins_per_key() -> None:
    clock = ManualClock(T0)
    kids = (EventTrigger(expect=("a",), for_each=("entity.id",)), EventTrigger(expect=("b",), for_each=("entity.id",)))
    e = one(CompoundTrigger(kids, require=2, within=60))
    assert feed(e, [ev(1, "a", 0, shot=1), ev(2, "b", 1, shot=2)], clock) == []
    assert [f.key for f in feed(e, [ev(3, "b", 2, shot=1)], clock)] == ["1"]


def test_a_sequence_trigger_needs_its_children_in_event_time_order_even_when_delivered_out_of_order() -> None:
    clock = ManualClock(T0)
    e = one(SequenceTrigger((EventTrigger(expect=("a",)), EventTrigger(expect=("b",))), within=60))
    assert feed(e, [ev(1, "b", 0), ev(2, "a", 10)], clock) == []
    assert [f.events for f in feed(e, [ev(3, "b", 20)], clock)] == [(2, 3)]
    e2 = one(SequenceTrigger((EventTrigger(expect=("a",)), EventTrigger(expect=("b",))), within=60), name="s2")
    assert [f.events for f in feed(e2, [ev(5, "b", 20), ev(4, "a", 10)], clock)] == [(4, 5)]


def test_a_follower_waits_for_its_leader_then_is_evaluated() -> None:
    clock = ManualClock(T0)
    e = one(SequenceTrigger((EventTrigger(expect=("a",)), EventTrigger(expect=("b",))), within=60))
    follower = ev(6, "b", 5, follows=9, received=datetime.fromtimestamp(T0, UTC))
    assert feed(e, [follower], clock) == []
    fired = feed(e, [ev(9, "a", 1)], clock)
    assert [f.events for f in fired] == [(9, 6)]


def test_a_follower_whose_leader_never_comes_is_released_after_the_bound() -> None:
    clock = ManualClock(T0)
    e = one(EventTrigger(expect=("b",)), follow_bound=60)
    assert feed(e, [ev(6, "b", 0, follows=99, received=datetime.fromtimestamp(T0, UTC))], clock) == []
    clock.advance(61)
    assert [f.events for f in e.sweep(clock.time())] == [(6,)]


def test_the_recursion_guard_stops_deep_chains_and_an_automations_own_events() -> None:
    clock = ManualClock(T0)
    e = one(EventTrigger(expect=("x",)), max_depth=3)
    deep = ev(1, "x", 0, data={"trackwire": {"depth": 3, "automation": "other"}})
    own = ev(2, "x", 0, data={"trackwire": {"depth": 1, "automation": "a"}})
    other = ev(3, "x", 0, data={"trackwire": {"depth": 1, "automation": "other"}})
    assert [f.events for f in feed(e, [deep, own, other], clock)] == [(3,)]


def test_firing_ids_are_stable_so_a_reevaluated_event_gives_the_same_idempotency_key() -> None:
    clock = ManualClock(T0)
    first = feed(one(EventTrigger(expect=("x",))), [ev(1, "x", 0)], clock)
    second = feed(one(EventTrigger(expect=("x",))), [ev(1, "x", 0)], clock)
    assert first[0].id == second[0].id


def test_state_survives_a_rebuild_of_the_evaluator_and_changed_definitions_drop_it() -> None:
    clock = ManualClock(T0)
    trig = EventTrigger(expect=("x",), threshold=3, within=600)
    e = one(trig)
    feed(e, [ev(1, "x", 0), ev(2, "x", 1)], clock)
    again = one(trig, state=dict(e.state))
    assert [f.events for f in feed(again, [ev(3, "x", 2)], clock)] == [(1, 2, 3)]
    changed = one(EventTrigger(expect=("x",), threshold=4, within=600), state=dict(e.state))
    assert not changed.state and changed.dirty


@settings(max_examples=60, deadline=None)
@given(
    opens=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 500)), min_size=1, max_size=25),
    answers=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 700)), max_size=25),
    sweeps=st.lists(st.integers(1, 400), min_size=1, max_size=30),
)
def test_a_proactive_trigger_fires_exactly_once_per_expired_window_whatever_the_sweep_timing(
    opens: list[tuple[int, int]], answers: list[tuple[int, int]], sweeps: list[int]
) -> None:
    within, lateness = 60.0, 15.0
    trig = EventTrigger(
        after=("open",), expect=("answer",), posture="proactive", within=within, for_each=("entity.id",)
    )
    events = sorted(
        [ev(0, "open", t, shot=k) for k, t in opens] + [ev(0, "answer", t, shot=k) for k, t in answers],
        key=lambda e: (e.occurred, e.type != "answer"),
    )
    events = [Event(**{**_fields(e), "id": i + 1}) for i, e in enumerate(events)]

    # The windows the rules define, computed independently: per key, an open with no open window starts one;
    # an answer inside (after its opener) closes it.
    expected: list[tuple[str, float]] = []
    current: dict[str, float] = {}
    for event in events:
        key, t = str(event.entity.id if event.entity else ""), event.occurred.timestamp()
        start = current.get(key)
        if start is not None and t >= start + within:
            expected.append((key, start + within))
            current.pop(key)
            start = None
        if event.type == "answer" and start is not None and t > start:
            current.pop(key)
        elif event.type == "open" and start is None:
            current[key] = t
    expected.extend((k, s + within) for k, s in current.items())

    clock = ManualClock(T0)
    e = one(trig, lateness=lateness)
    fired: list[Firing] = []
    for event in events:
        clock.current = max(clock.current, event.occurred.timestamp())
        e.on_event(event, clock.time())
        for step in sweeps[: len(sweeps) // 2]:
            if step % 7 == 0:
                fired.extend(e.sweep(clock.time()))
    for step in sweeps:
        clock.advance(step)
        fired.extend(e.sweep(clock.time()))
    clock.advance(within + lateness + 1)
    fired.extend(e.sweep(clock.time()))
    assert sorted((f.key, f.window[1]) for f in fired) == sorted(expected)
    assert len({f.id for f in fired}) == len(fired)
