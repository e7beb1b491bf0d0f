"""The poller's client converts answers exactly like shotgun-api3, only in UTC and in one pass."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from shotgun_api3.shotgun import Shotgun

from trackwire.sources.shotgrid_client import PollerShotgun

DATE_LIKE = st.sampled_from(
    [
        "2024-05-01T10:00:00Z",  # what ShotGrid sends
        "2024-02-30T10:00:00Z",  # matches shotgun-api3's pattern, strptime refuses it: stays a string
        "2024-05-01 10:00:00Z",  # 20 characters, another separator: the pattern takes it, strptime does not
        "20240501T100000Z1234",  # 20 characters that are no date
        "2024-05-01T10:00:00",  # 19 characters: never looked at
        "2024-05-01T10:00:00ZZ",
        "",
    ]
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=24), DATE_LIKE
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=30,
)


def clients() -> tuple[Shotgun, PollerShotgun]:
    args = ("http://127.0.0.1:1", "trackwire", "secret")
    return Shotgun(*args, connect=False), PollerShotgun(*args, connect=False)


def same(ours: Any, theirs: Any) -> None:
    """Equal values of equal types; date-times equal as instants, ours in UTC."""
    assert type(ours) is type(theirs), (ours, theirs)
    if isinstance(ours, dict):
        assert list(ours) == list(theirs)
        for key in ours:
            same(ours[key], theirs[key])
    elif isinstance(ours, list):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            same(a, b)
    elif isinstance(ours, datetime):
        assert ours.tzinfo is UTC
        assert ours == theirs
    else:
        assert ours == theirs or (ours != ours and theirs != theirs)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_answer_converts_like_shotgun_api3_with_date_times_in_utc(data: Any) -> None:
    stock, poller = clients()
    decoded = json.loads(json.dumps(data))  # what a response body decodes to
    same(poller._transform_inbound(copy.deepcopy(decoded)), stock._transform_inbound(decoded))


def test_a_read_answer_keeps_its_shape_and_gets_date_times_in_meta_too() -> None:
    stock, poller = clients()
    row = {
        "type": "EventLogEntry",
        "id": 7,
        "meta": {"old_value": "2024-01-01T00:00:00Z", "new_value": ["2024-01-02T00:00:00Z", "text"]},
        "entity": {"type": "Shot", "id": 1, "name": "2024-01-03T00:00:00Z"},
        "created_at": "2024-05-01T10:00:00Z",
    }
    answer: dict[str, Any] = {"results": {"entities": [row, dict(row, id=8)], "paging_info": {"entity_count": 2}}}
    ours = poller._transform_inbound(copy.deepcopy(answer))
    same(ours, stock._transform_inbound(answer))
    assert ours["results"]["entities"][1]["created_at"] == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    # a plain string answer (some API calls return one) converts the same way too
    assert poller._transform_inbound("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert poller._transform_inbound("ok") == "ok"


def test_naive_date_times_when_the_connection_asks_for_them_are_shotgun_api3s_own() -> None:
    stock, poller = clients()
    stock.config.convert_datetimes_to_utc = False
    poller.config.convert_datetimes_to_utc = False
    answer: dict[str, Any] = {"created_at": "2024-05-01T10:00:00Z"}  # the conversion makes datetimes
    assert poller._transform_inbound(dict(answer)) == stock._transform_inbound(dict(answer))
    assert poller._transform_inbound(dict(answer))["created_at"].tzinfo is None
