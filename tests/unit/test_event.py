"""The event envelope: encoding round trips, references, and the ordering key rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackwire.core.event import Event, Ref, decode_event, dumps, encode_event, loads, ordering_key

PARIS = timezone(timedelta(hours=1), "CET")


def _event(**overrides: object) -> Event:
    fields: dict[str, object] = {
        "source": "shotgrid:studio",
        "source_id": "101",
        "type": "Shotgun_Task_Change",
        "entity": Ref("Task", 55, "comp"),
        "project": Ref("Project", 7, "Big Buck"),
        "user": Ref("HumanUser", 3, "Ann"),
        "attribute": "sg_status_list",
        "old": "wtg",
        "new": "ip",
        "occurred": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "received": datetime(2024, 5, 1, 12, 30, 1, tzinfo=UTC),
        "data": {"id": 101, "meta": {"old_value": "wtg", "new_value": "ip"}},
    }
    fields.update(overrides)
    return Event(**fields)  # type: ignore[arg-type]


def test_an_event_survives_an_encode_decode_round_trip_unchanged() -> None:
    event = _event(id=42, follows=41, key="custom")
    assert decode_event(encode_event(event)) == event


def test_timezone_aware_datetimes_nested_in_data_come_back_with_their_offset() -> None:
    created = datetime(2024, 5, 1, 14, 30, 5, 123456, tzinfo=PARIS)
    event = _event(data={"created_at": created, "meta": {"history": [{"at": created}, {"when": date(2024, 5, 2)}]}})

    back = decode_event(encode_event(event))

    assert back.data["created_at"] == created
    assert back.data["created_at"].utcoffset() == timedelta(hours=1)
    assert back.data["meta"]["history"][0]["at"] == created
    assert back.data["meta"]["history"][1]["when"] == date(2024, 5, 2)
    assert back.occurred.tzinfo is not None


def test_a_payload_holding_only_dates_comes_back_with_dates() -> None:
    event = _event(data={"due": date(2024, 6, 30), "start": [date(2024, 6, 1)]})
    back = decode_event(encode_event(event))
    assert back.data == {"due": date(2024, 6, 30), "start": [date(2024, 6, 1)]}


def test_decoding_with_an_explicit_id_overrides_the_id_in_the_body() -> None:
    body = encode_event(_event(id=0))
    assert decode_event(body, 99).id == 99
    assert decode_event(body).id == 0


def test_tuples_and_sets_come_back_as_lists_and_bytes_as_text() -> None:
    back = loads(dumps({"t": (1, 2), "s": {3}, "b": b"caf\xc3\xa9"}))
    assert back == {"t": [1, 2], "s": [3], "b": "café"}


def test_a_value_that_is_not_json_serialisable_raises_type_error() -> None:
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        encode_event(_event(data={"x": object()}))


def test_a_dollar_dt_key_that_is_not_a_date_is_left_as_a_plain_dict() -> None:
    assert loads(dumps({"$dt": 5})) == {"$dt": 5}
    assert loads(dumps({"$dt": "not a date"})) == {"$dt": "not a date"}
    assert loads(dumps({"$dt": "2024-01-01", "other": 1})) == {"$dt": "2024-01-01", "other": 1}


def test_nan_and_infinities_are_stored_as_null_which_every_json_reader_accepts() -> None:
    # the standard library would write the non-JSON tokens NaN/Infinity, which PostgreSQL's jsonb refuses
    assert loads(dumps({"a": float("nan"), "b": float("inf"), "c": [float("-inf"), 1.5]})) == {
        "a": None,
        "b": None,
        "c": [None, 1.5],
    }


def test_what_orjson_refuses_is_still_encoded_exactly() -> None:
    huge = {"big": 2**70, "small": -(2**64), "text": "caf\u00e9"}
    assert loads(dumps(huge)) == huge


def test_what_cannot_be_json_is_refused_with_the_type_named() -> None:
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        dumps({"x": object()})


_key = st.text(min_size=2).filter(lambda k: not k.startswith("$"))
_json_leaf = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False)
_aware = st.datetimes(timezones=st.sampled_from([UTC, PARIS, timezone(timedelta(hours=-7, minutes=-30))]))
_payload = st.recursive(
    _json_leaf | _aware,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_key, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(_key, _payload, max_size=5), old=_payload, new=_payload)
def test_any_json_payload_with_aware_datetimes_round_trips(data: dict[str, object], old: object, new: object) -> None:
    event = _event(data=data, old=old, new=new)
    back = decode_event(encode_event(event))
    assert back.data == data
    assert back.old == old
    assert back.new == new


def test_a_reference_parses_from_text_with_numeric_ids_as_ints() -> None:
    assert Ref.from_json("Shot:1234") == Ref("Shot", 1234)
    assert Ref.from_json("Task:5b0c-aa") == Ref("Task", "5b0c-aa")
    assert Ref.from_json("Asset:a:b") == Ref("Asset", "a:b")


def test_a_reference_parses_from_a_dict_keeping_its_name() -> None:
    assert Ref.from_json({"type": "Shot", "id": 12, "name": "sh010"}) == Ref("Shot", 12, "sh010")
    assert Ref.from_json({"type": "Shot", "id": 12}).name is None  # type: ignore[union-attr]


def test_none_and_existing_references_pass_through() -> None:
    ref = Ref("Shot", 1)
    assert Ref.from_json(None) is None
    assert Ref.from_json(ref) is ref


@pytest.mark.parametrize("bad", ["Shot", "Shot:", ":12", {"type": "Shot"}, {"id": 3}, 12, ["Shot", 1]])
def test_a_malformed_reference_is_refused_with_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="reference"):
        Ref.from_json(bad)


def test_a_reference_prints_as_type_colon_id_and_serialises_without_a_missing_name() -> None:
    assert str(Ref("Shot", 1234, "sh010")) == "Shot:1234"
    assert Ref("Shot", 1).to_json() == {"type": "Shot", "id": 1}
    assert Ref("Shot", 1, "a").to_json() == {"type": "Shot", "id": 1, "name": "a"}


def test_an_explicit_key_wins_over_the_entity() -> None:
    assert ordering_key(_event(key="render-farm")) == "render-farm"


def test_the_entity_is_the_default_ordering_key() -> None:
    event = _event()
    assert ordering_key(event) == "Task:55"
    assert event.ordering_key == "Task:55"


def test_an_entity_id_given_as_text_or_number_gives_the_same_key() -> None:
    assert ordering_key(_event(entity=Ref("Shot", "12"))) == ordering_key(_event(entity=Ref("Shot", 12)))


def test_events_without_an_entity_are_ordered_per_project() -> None:
    assert ordering_key(_event(entity=None)) == "Project:7"


def test_events_with_neither_entity_nor_project_are_ordered_per_source() -> None:
    assert ordering_key(_event(entity=None, project=None)) == "source:shotgrid:studio"


def test_an_empty_explicit_key_falls_back_to_the_entity() -> None:
    assert ordering_key(_event(key="")) == "Task:55"


def test_with_id_sets_the_id_and_a_received_time_only_when_missing() -> None:
    event = _event(received=None)
    stamped = event.with_id(5)
    assert stamped.id == 5
    assert stamped.received is not None
    assert stamped.received.tzinfo is not None
    received = datetime(2020, 1, 1, tzinfo=UTC)
    assert _event(received=received).with_id(6).received == received
    assert event.id is None
