"""One contract for every Store adapter: each test runs against SQLite (a real file) and the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from trackwire.core.event import Event, Ref
from trackwire.core.ledger import Checkpoint, DeliveryRow, State
from trackwire.errors import StoreError
from trackwire.ports import DeliveryQueue, EventStore, Store
from trackwire.store import open_store

C = ("plugin.on_change",)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'contract.db'}" if request.param == "sqlite" else "memory://"
    opened = open_store(url)
    yield opened
    opened.close()


def _event(
    source_id: str | int, type: str = "Shotgun_Task_Change", source: str = "shotgrid:test", **kw: object
) -> Event:
    fields: dict[str, object] = {"entity": Ref("Task", 1)}
    fields.update(kw)
    return Event(source=source, source_id=source_id, type=type, **fields)  # type: ignore[arg-type]


def _fill(store: Store, n: int, types: tuple[str, ...] = ("A", "B")) -> None:
    store.append([_event(i, type=types[i % len(types)], entity=Ref("Shot", i % 3)) for i in range(n)])


def _row(event_id: int, state: State = State.PENDING, **kw: object) -> DeliveryRow:
    fields: dict[str, object] = {"attempts": 0, "retry_at": None, "consumers": C}
    fields.update(kw)
    return DeliveryRow(event_id, "Shot:1", state, **fields)  # type: ignore[arg-type]


def test_both_ports_are_provided(store: Store) -> None:
    assert isinstance(store, EventStore)
    assert isinstance(store, DeliveryQueue)


# -- the event log -------------------------------------------------------------------------------------


def test_append_is_idempotent_on_source_and_source_id(store: Store) -> None:
    first = store.append([_event("1"), _event("2")])
    assert first.ids == (1, 2)
    again = store.append([_event("1"), _event("3"), _event("2")])
    assert again.ids == (None, 3, None)
    assert again.new == (3,)
    other_source = store.append([_event("1", source="kitsu:test")])
    assert other_source.ids == (4,)
    assert store.last_id() == 4


def test_a_numeric_and_a_text_source_id_are_the_same_upstream_record(store: Store) -> None:
    assert store.append([_event(7)]).ids == (1,)
    assert store.append([_event("7")]).ids == (None,)


def test_a_record_repeated_within_one_append_is_stored_once(store: Store) -> None:
    assert store.append([_event("1"), _event("1"), _event("2")]).ids == (1, None, 2)
    assert [r.id for r in store.read_after(0, 10)] == [1, 2]


def test_the_cursor_is_stored_with_the_events_and_reads_back_equal(store: Store) -> None:
    seen = datetime(2024, 5, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    store.append([_event("1")], source="shotgrid:test", cursor={"last_id": 1, "seen": seen})
    assert store.get_cursor("shotgrid:test") == {"last_id": 1, "seen": seen}
    store.append([_event("2")], source="shotgrid:test", cursor={"last_id": 2, "seen": seen})
    assert store.get_cursor("shotgrid:test") == {"last_id": 2, "seen": seen}
    assert store.get_cursor("nobody") is None


def test_the_stored_cursor_is_a_copy_not_the_callers_object(store: Store) -> None:
    cursor = {"ids": [1]}
    store.append([_event("1")], source="s", cursor=cursor)
    cursor["ids"].append(2)
    assert store.get_cursor("s") == {"ids": [1]}


def test_an_append_failing_part_way_stores_neither_events_nor_cursor(store: Store) -> None:
    store.append([_event("1")], source="shotgrid:test", cursor={"last_id": 1})
    with pytest.raises(TypeError):
        store.append(
            [_event("2"), _event("3", data={"bad": object()}), _event("4")],
            source="shotgrid:test",
            cursor={"last_id": 4},
        )
    assert store.last_id() == 1
    assert store.get_cursor("shotgrid:test") == {"last_id": 1}
    # nothing of the failed batch was remembered either: the same records append fine afterwards
    assert store.append([_event("2"), _event("4")]).ids == (2, 3)


def test_a_cursor_that_cannot_be_stored_stores_no_events(store: Store) -> None:
    with pytest.raises(TypeError):
        store.append([_event("1")], source="s", cursor={"bad": object()})
    assert store.last_id() == 0
    assert store.get_cursor("s") is None


def test_read_after_returns_events_in_id_order_after_the_position(store: Store) -> None:
    _fill(store, 10)
    assert [r.id for r in store.read_after(0, 100)] == list(range(1, 11))
    assert [r.id for r in store.read_after(4, 3)] == [5, 6, 7]
    assert store.read_after(10, 5) == []
    assert store.read_after(0, 0) == []


def test_read_after_by_type_merges_types_in_id_order_and_respects_the_limit(store: Store) -> None:
    _fill(store, 12, types=("A", "B", "C"))
    assert [r.id for r in store.read_after(0, 100, ["A"])] == [1, 4, 7, 10]
    assert [r.id for r in store.read_after(2, 4, ["C", "A"])] == [3, 4, 6, 7]
    assert [r.id for r in store.read_after(0, 3, ["A", "A"])] == [1, 4, 7], "a repeated type does not repeat events"
    assert store.read_after(0, 10, ["nope"]) == []
    assert store.read_after(0, 10, []) == []


def test_records_carry_type_ordering_key_and_a_body_that_decodes_to_the_event(store: Store) -> None:
    occurred = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = _event("x", entity=Ref("Shot", 12, "sh010"), attribute="code", new="a", occurred=occurred, data={"k": 1})
    store.append([event])
    (record,) = store.read_after(0, 1)
    assert (record.id, record.type, record.key) == (1, "Shotgun_Task_Change", "Shot:12")
    back = record.event
    assert back.id == 1
    assert (back.entity, back.attribute, back.new, back.occurred, back.data) == (
        Ref("Shot", 12, "sh010"),
        "code",
        "a",
        occurred,
        {"k": 1},
    )
    assert back.received is not None
    assert store.get_event(1) == back
    assert store.get_event(2) is None


def test_get_records_returns_the_asked_ids_in_the_asked_order_leaving_out_unknown_ones(store: Store) -> None:
    _fill(store, 5)
    assert [r.id for r in store.get_records([4, 99, 2, 0, -1])] == [4, 2]
    assert store.get_records([]) == []


# -- groups and deliveries -----------------------------------------------------------------------------


def test_register_group_creates_at_the_start_and_then_keeps_the_existing_position(store: Store) -> None:
    created = store.register_group("g", 7)
    assert (created.name, created.position, created.state, created.generation) == ("g", 7, "active", 0)
    store.write_checkpoint("g", Checkpoint(9, (), ()))
    again = store.register_group("g", 100)
    assert again.position == 9
    store.register_group("a", 0)
    assert [g.name for g in store.groups()] == ["a", "g"]


def test_set_group_state_records_state_and_reason(store: Store) -> None:
    store.register_group("g", 0)
    store.set_group_state("g", "deactivated", "event 3: boom")
    record = store.register_group("g", 0)
    assert (record.state, record.reason) == ("deactivated", "event 3: boom")
    store.set_group_state("g", "active", None)
    assert store.register_group("g", 0).reason is None


def test_write_checkpoint_upserts_and_deletes_rows_and_reads_them_back_equal(store: Store) -> None:
    store.register_group("g", 0)
    retry = _row(3, State.RETRY, attempts=2, retry_at=1234.5, error="boom", traceback="Traceback (most recent...)")
    store.write_checkpoint("g", Checkpoint(5, (_row(1), _row(2, State.RUNNING), retry), ()))
    assert store.load_rows("g") == [_row(1), _row(2, State.RUNNING), retry]
    store.write_checkpoint("g", Checkpoint(6, (_row(1, State.DEAD, attempts=5, error="x"),), (2,)))
    assert [(r.event_id, r.state) for r in store.load_rows("g")] == [(1, State.DEAD), (3, State.RETRY)]
    assert [r.event_id for r in store.load_rows("g", ("retry", "pending"))] == [3]
    assert store.load_rows("other") == []


def test_the_position_never_moves_backwards(store: Store) -> None:
    store.register_group("g", 0)
    store.write_checkpoint("g", Checkpoint(10, (), ()))
    store.write_checkpoint("g", Checkpoint(4, (_row(2),), ()))
    assert store.register_group("g", 0).position == 10
    assert [r.event_id for r in store.load_rows("g")] == [2], "the rows of a late plan are still written"


def test_rows_of_one_group_are_not_seen_by_another(store: Store) -> None:
    store.register_group("g", 0)
    store.register_group("h", 0)
    store.write_checkpoint("g", Checkpoint(1, (_row(1),), ()))
    store.write_checkpoint("h", Checkpoint(1, (), (1,)))
    assert [r.event_id for r in store.load_rows("g")] == [1]


def test_progress_of_an_unregistered_group_is_refused_and_writes_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="ghost"):
        store.write_checkpoint("ghost", Checkpoint(3, (_row(1),), ()))
    assert store.load_rows("ghost") == []
    assert store.groups() == []


def _dead_setup(store: Store) -> None:
    _fill(store, 10)
    for group in ("a", "b"):
        store.register_group(group, 0)
    store.write_checkpoint(
        "a",
        Checkpoint(
            10,
            (
                _row(1, State.DEAD, attempts=5, error="e1", traceback="tb1"),
                _row(2),
                _row(4, State.DEAD, attempts=5, error="e4"),
                _row(6, State.RETRY, attempts=1, retry_at=9.0),
                _row(7, State.DEAD, attempts=1, error="Fail: no"),
            ),
            (),
        ),
    )
    store.write_checkpoint("b", Checkpoint(10, (_row(3, State.DEAD, attempts=5, error="e3"),), ()))


def test_dead_letters_page_by_group_and_event_id(store: Store) -> None:
    _dead_setup(store)
    everything = store.dead_letters()
    assert [(g, r.event_id) for g, r in everything] == [("a", 1), ("a", 4), ("a", 7), ("b", 3)]
    assert everything[0][1].error == "e1"
    assert everything[0][1].traceback == "tb1"
    first = store.dead_letters(limit=2)
    assert [(g, r.event_id) for g, r in first] == [("a", 1), ("a", 4)]
    last_group, last_row = first[-1]
    second = store.dead_letters(after=(last_group, last_row.event_id), limit=2)
    assert [(g, r.event_id) for g, r in second] == [("a", 7), ("b", 3)]
    assert store.dead_letters(after=("b", 3)) == []


def test_dead_letters_of_one_group_page_by_event_id(store: Store) -> None:
    _dead_setup(store)
    assert [r.event_id for _, r in store.dead_letters("a", limit=2)] == [1, 4]
    assert [r.event_id for _, r in store.dead_letters("a", after=("a", 4))] == [7]
    assert [(g, r.event_id) for g, r in store.dead_letters("b")] == [("b", 3)]


def test_requeue_dead_makes_dead_rows_pending_with_fresh_attempts_and_bumps_the_generation(store: Store) -> None:
    _dead_setup(store)
    assert store.requeue_dead("a", [4, 2, 99]) == 1
    rows = {r.event_id: r for r in store.load_rows("a")}
    assert (rows[4].state, rows[4].attempts, rows[4].retry_at, rows[4].error) == (State.PENDING, 0, None, "e4")
    assert rows[2] == _row(2), "a row that is not dead is left alone"
    assert rows[1].state is State.DEAD
    assert store.register_group("a", 0).generation == 1
    assert store.requeue_dead("a") == 2
    assert store.dead_letters("a") == []
    assert rows[6].state is State.RETRY
    assert store.register_group("a", 0).generation == 2
    assert [r.event_id for _, r in store.dead_letters("b")] == [3], "other groups keep their dead letters"


def test_discard_dead_removes_only_dead_rows(store: Store) -> None:
    _dead_setup(store)
    assert store.discard_dead("a", [1, 2]) == 1
    assert [r.event_id for r in store.load_rows("a")] == [2, 4, 6, 7]
    assert store.discard_dead("a") == 2
    assert [r.event_id for r in store.load_rows("a")] == [2, 6]
    assert store.discard_dead("nobody") == 0


def test_replay_range_queues_every_event_of_the_range_without_clobbering_existing_rows(store: Store) -> None:
    _dead_setup(store)
    before = {r.event_id: r for r in store.load_rows("a")}
    added = store.replay_range("a", 1, 8, ["plugin.other"])
    assert added == 3  # 3, 5 and 8: 1, 4 and 7 are dead, 2 pending, 6 waiting to retry
    rows = {r.event_id: r for r in store.load_rows("a")}
    for event_id, row in before.items():
        assert rows[event_id] == row, f"row {event_id} was clobbered"
    for event_id in (3, 5, 8):
        new = rows[event_id]
        assert (new.state, new.attempts, new.consumers) == (State.PENDING, 0, ("plugin.other",))
        assert new.key == f"Shot:{(event_id - 1) % 3}"
    assert 9 not in rows
    assert store.register_group("a", 0).generation == 1


def test_replay_range_past_the_end_of_the_log_queues_what_exists(store: Store) -> None:
    _fill(store, 3)
    store.register_group("g", 3)
    assert store.replay_range("g", 2, 1000) == 2
    assert [(r.event_id, r.consumers) for r in store.load_rows("g")] == [(2, ()), (3, ())]
    assert store.replay_range("g", 2, 1000) == 0
    assert store.register_group("g", 0).generation == 2
