"""The delivery rules of one ordering group (GroupLedger), fact by fact, with numbers for time."""

from __future__ import annotations

import random

import pytest

from trackwire.core.backoff import Backoff
from trackwire.core.ledger import Checkpoint, DeliveryRow, GroupLedger, State

C = ("plugin.callback",)


def _ledger(**kwargs: object) -> GroupLedger:
    options: dict[str, object] = {
        "max_attempts": 3,
        "backoff": Backoff(base=1.0, cap=10.0),
        "persist_after": 5.0,
        "rng": random.Random(1),
    }
    options.update(kwargs)
    return GroupLedger(**options)  # type: ignore[arg-type]


def _feed(ledger: GroupLedger, keys: str, now: float = 0.0, first: int = 1) -> None:
    """Offer events ``first, first+1, ...`` whose keys are the letters of ``keys``."""
    for offset, key in enumerate(keys):
        ledger.offer(first + offset, key, C, now)


def _ids(items: list) -> list[int]:  # type: ignore[type-arg]
    return [i.event_id for i in items]


class Store:
    """The durable side of one group, as the runtime keeps it: a position and rows."""

    def __init__(self) -> None:
        self.position = 0
        self.rows: dict[int, DeliveryRow] = {}

    def write(self, plan: Checkpoint) -> None:
        for row in plan.upserts:
            self.rows[row.event_id] = row
        for event_id in plan.deletes:
            self.rows.pop(event_id, None)
        self.position = max(self.position, plan.position)

    def commit(self, ledger: GroupLedger, now: float, persist_all: bool = False) -> Checkpoint:
        plan = ledger.checkpoint(now, persist_all)
        self.write(plan)
        ledger.committed(plan)
        return plan


# -- per-key FIFO -------------------------------------------------------------------------------------


def test_each_key_runs_one_chain_at_a_time_in_log_order() -> None:
    ledger = _ledger(max_chain=1)
    _feed(ledger, "AABA")
    assert _ids(ledger.take_ready(10)) == [1, 3]
    assert ledger.take_ready(10) == []
    ledger.succeeded(1)
    assert _ids(ledger.take_ready(10)) == [2]
    ledger.succeeded(2)
    assert _ids(ledger.take_ready(10)) == [4]


def test_pending_items_behind_a_free_head_are_dispatched_as_one_chain() -> None:
    ledger = _ledger(max_chain=3)
    _feed(ledger, "AAAAB")
    taken = ledger.take_ready(10)
    assert _ids(taken) == [1, 2, 3, 5]
    assert all(item.state is State.RUNNING for item in taken)
    assert ledger.running == 4
    # nothing joins a chain that is already running
    _feed(ledger, "A", first=6)
    assert ledger.take_ready(10) == []
    for event_id in (1, 2, 3):
        ledger.succeeded(event_id)
    assert _ids(ledger.take_ready(10)) == [4, 6]


def test_take_ready_respects_its_limit_and_leaves_the_rest_ready() -> None:
    ledger = _ledger()
    _feed(ledger, "ABCD")
    assert _ids(ledger.take_ready(2)) == [1, 2]
    assert _ids(ledger.take_ready(2)) == [3, 4]


def test_a_retry_blocks_only_its_own_key_while_other_keys_proceed() -> None:
    ledger = _ledger()
    _feed(ledger, "AABB")
    assert _ids(ledger.take_ready(10)) == [1, 2, 3, 4]
    outcome = ledger.failed(1, 0.0, "boom")
    assert not outcome.dead
    assert outcome.attempts == 1
    assert ledger.items[2].state is State.PENDING, "the chain behind the failed head is released"
    ledger.succeeded(3)
    ledger.succeeded(4)
    _feed(ledger, "AB", first=5)
    assert _ids(ledger.take_ready(10)) == [6], "key B carries on, key A waits for its retry"
    assert ledger.blocked_keys() == ["A"]
    due = ledger.next_due()
    assert due is not None
    assert ledger.due(due - 0.001) == 0
    assert ledger.due(due) == 1
    assert _ids(ledger.take_ready(10)) == [1, 2, 5]
    assert ledger.items[1].attempts == 1


def test_a_retry_waits_a_jittered_backoff() -> None:
    ledger = _ledger(max_attempts=10, backoff=Backoff(base=2.0, cap=100.0))
    _feed(ledger, "A")
    now = 50.0
    for attempt in range(1, 6):
        ledger.take_ready(1)
        outcome = ledger.failed(1, now, "boom")
        assert outcome.retry_at is not None
        ceiling = 2.0 * 2 ** (attempt - 1)
        assert 0.1 * ceiling <= outcome.retry_at - now <= ceiling
        now = outcome.retry_at
        assert ledger.due(now) == 1


def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    ledger = _ledger()
    _feed(ledger, "A")
    ledger.take_ready(1)
    outcome = ledger.failed(1, 100.0, "busy", retry_after=42.0)
    assert outcome.retry_at == 142.0
    assert ledger.next_due() == 142.0
    assert ledger.due(141.9) == 0
    assert ledger.due(142.0) == 1


def test_dead_letter_after_max_attempts_frees_the_key() -> None:
    ledger = _ledger(max_attempts=3)
    _feed(ledger, "AA")
    now = 0.0
    for attempt in (1, 2):
        assert _ids(ledger.take_ready(1)) == [1]
        outcome = ledger.failed(1, now, f"boom {attempt}", "Traceback ...")
        assert not outcome.dead
        now = outcome.retry_at or now
        ledger.due(now)
    assert _ids(ledger.take_ready(1)) == [1]
    outcome = ledger.failed(1, now, "boom 3", "Traceback ...")
    assert outcome.dead
    assert outcome.attempts == 3
    assert 1 not in ledger.items
    assert _ids(ledger.take_ready(10)) == [2]
    store = Store()
    store.commit(ledger, now)
    dead = store.rows[1]
    assert (dead.state, dead.attempts, dead.error, dead.traceback) == (State.DEAD, 3, "boom 3", "Traceback ...")


def test_a_final_failure_dead_letters_at_once() -> None:
    ledger = _ledger(max_attempts=5)
    _feed(ledger, "AA")
    ledger.take_ready(10)
    outcome = ledger.failed(1, 0.0, "Fail: bad data", final=True)
    assert outcome.dead
    assert outcome.attempts == 1
    # the item behind was dispatched in the chain; the worker reports it "not run"
    ledger.interrupted(2)
    assert _ids(ledger.take_ready(10)) == [2]


def test_an_interrupted_item_runs_again_without_counting_an_attempt() -> None:
    ledger = _ledger()
    _feed(ledger, "AAB")
    ledger.take_ready(10)
    ledger.interrupted(1)
    assert ledger.items[1].state is State.PENDING
    assert ledger.items[2].state is State.PENDING, "the chain behind it did not run either"
    assert ledger.running == 1
    again = ledger.take_ready(10)
    assert _ids(again) == [1, 2]
    assert [i.attempts for i in again] == [0, 0]


def test_interrupting_an_item_that_is_not_running_changes_nothing() -> None:
    ledger = _ledger()
    _feed(ledger, "A")
    ledger.interrupted(1)
    ledger.interrupted(99)
    assert _ids(ledger.take_ready(10)) == [1]


def test_events_without_consumers_are_skipped_and_offers_must_move_forward() -> None:
    ledger = _ledger()
    ledger.offer(1, "A", (), 0.0)
    assert ledger.outstanding == 0
    assert ledger.read_pos == 1
    with pytest.raises(ValueError, match="behind read position"):
        ledger.offer(1, "A", C, 0.0)
    ledger.skip_to(10)
    assert ledger.read_pos == 10
    ledger.skip_to(5)
    assert ledger.read_pos == 10


# -- durability ---------------------------------------------------------------------------------------


def test_the_position_never_passes_an_unfinished_item_that_has_no_row() -> None:
    ledger = _ledger(persist_after=5.0)
    _feed(ledger, "ABC", now=0.0)
    ledger.take_ready(10)
    ledger.succeeded(1)
    ledger.succeeded(3)
    plan = ledger.checkpoint(1.0)
    assert plan.position == 1, "event 2 is unfinished and young: no row, so the position stops before it"
    assert plan.upserts == ()
    ledger.succeeded(2)
    assert ledger.checkpoint(1.0).position == 3


def test_stalled_items_older_than_persist_after_get_rows_so_the_position_moves_past_them() -> None:
    ledger = _ledger(persist_after=5.0)
    _feed(ledger, "AAB", now=0.0)
    _feed(ledger, "C", now=4.0, first=4)
    assert _ids(ledger.take_ready(1, now=0.5)) == [1]  # A's head starts and runs long; 2 waits behind it
    store = Store()
    plan = store.commit(ledger, 6.0)
    assert sorted(r.event_id for r in plan.upserts) == [1, 2]
    assert plan.position == 2, "3 (key B) is merely waiting for a worker: no row, the position stops before it"
    assert store.rows[1].state is State.RUNNING
    assert store.rows[2].state is State.PENDING
    ledger.succeeded(1)
    assert sorted(_ids(ledger.take_ready(10, now=6.0))) == [2, 3, 4]
    plan = store.commit(ledger, 12.0)
    assert sorted(r.event_id for r in plan.upserts) == [2, 3, 4], "2 changed state; 3 and 4 now run long"
    assert plan.deletes == (1,)
    assert plan.position == 4


def test_items_merely_queued_for_a_worker_need_no_rows_however_old() -> None:
    ledger = _ledger(persist_after=5.0)
    _feed(ledger, "ABC", now=0.0)
    plan = ledger.checkpoint(100.0)
    assert plan.upserts == ()
    assert plan.position == 0


def test_a_retry_gets_a_row_at_once_and_finished_rows_are_deleted() -> None:
    ledger = _ledger(persist_after=100.0)
    _feed(ledger, "AB")
    ledger.take_ready(10)
    ledger.failed(2, 0.0, "boom")
    store = Store()
    plan = store.commit(ledger, 0.1)
    assert [r.event_id for r in plan.upserts] == [2]
    assert store.rows[2].state is State.RETRY
    assert plan.position == 0, "event 1 is still young and running without a row"
    ledger.succeeded(1)
    assert store.commit(ledger, 0.2).position == 2
    ledger.due(1e9)
    ledger.take_ready(10)
    ledger.succeeded(2)
    plan = store.commit(ledger, 0.3)
    assert plan.deletes == (2,)
    assert store.rows == {}


def test_persist_all_writes_a_row_for_every_unfinished_item() -> None:
    ledger = _ledger(persist_after=100.0)
    _feed(ledger, "ABC")
    plan = ledger.checkpoint(0.0, persist_all=True)
    assert sorted(r.event_id for r in plan.upserts) == [1, 2, 3]
    assert plan.position == 3


def test_committed_deletes_the_row_of_an_item_that_finished_while_the_write_was_in_flight() -> None:
    ledger = _ledger(persist_after=0.0)
    _feed(ledger, "AB")
    ledger.take_ready(10)
    store = Store()
    plan = ledger.checkpoint(1.0)
    assert sorted(r.event_id for r in plan.upserts) == [1, 2]
    ledger.succeeded(1)  # finishes while the write is in flight: it had no row when it finished
    store.write(plan)
    ledger.committed(plan)
    follow_up = store.commit(ledger, 2.0)
    assert follow_up.deletes == (1,)
    assert sorted(store.rows) == [2]


def test_committed_rewrites_a_row_that_changed_while_the_write_was_in_flight() -> None:
    ledger = _ledger(persist_after=0.0)
    _feed(ledger, "A")
    store = Store()
    ledger.take_ready(1)
    plan = ledger.checkpoint(1.0)
    ledger.failed(1, 1.0, "boom")
    store.write(plan)
    ledger.committed(plan)
    assert store.rows[1].state is State.RUNNING
    store.commit(ledger, 2.0)
    rewritten = store.rows[1]  # read afresh: mypy would carry the RUNNING narrowing across the commit
    assert rewritten.state is State.RETRY
    assert rewritten.attempts == 1


def test_a_dead_letter_decided_while_the_write_was_in_flight_keeps_its_row() -> None:
    ledger = _ledger(persist_after=0.0, max_attempts=1)
    _feed(ledger, "A")
    ledger.take_ready(1)
    store = Store()
    plan = ledger.checkpoint(1.0)
    assert plan.upserts[0].state is State.RUNNING
    ledger.failed(1, 1.0, "boom")  # dead, while the RUNNING row is being written
    store.write(plan)
    ledger.committed(plan)
    follow_up = store.commit(ledger, 2.0)
    assert follow_up.deletes == ()
    assert store.rows[1].state is State.DEAD
    assert store.rows[1].error == "boom"


def test_restore_after_a_restart_resumes_from_the_durable_position_and_rows() -> None:
    ledger = _ledger(persist_after=1.0, max_attempts=5)
    _feed(ledger, "ABAC", now=0.0)
    ledger.take_ready(10)  # 1, 2, 3 (chain behind 1) and 4 run
    ledger.failed(1, 0.0, "boom", retry_after=50.0)
    ledger.succeeded(2)
    store = Store()
    store.commit(ledger, 2.0)  # rows for 1 (retry), 3 and 4 (old enough)
    _feed(ledger, "AD", now=2.0, first=5)
    store.commit(ledger, 2.5)
    assert store.position == 4
    assert sorted(store.rows) == [1, 3, 4]
    # crash: the running item 4 and everything in memory is lost
    reborn = _ledger(persist_after=1.0, max_attempts=5, position=store.position)
    reborn.restore(list(store.rows.values()), now=10.0)
    for event_id, key in ((5, "A"), (6, "D")):  # the runtime re-reads the log after the position
        reborn.offer(event_id, key, C, 10.0)
    assert reborn.items[1].state is State.RETRY
    assert reborn.items[1].attempts == 1
    assert _ids(reborn.take_ready(10)) == [4, 6], "key A waits for the retry of event 1"
    reborn.due(50.0)
    assert _ids(reborn.take_ready(10)) == [1, 3, 5]


def test_a_restored_running_row_runs_again_and_dead_rows_stay_dead() -> None:
    rows = [
        DeliveryRow(3, "A", State.RUNNING, 2, None, C),
        DeliveryRow(4, "B", State.DEAD, 5, None, C, "boom"),
    ]
    ledger = _ledger(position=4)
    ledger.restore(rows, now=0.0)
    item = ledger.take_ready(10)
    assert _ids(item) == [3]
    assert item[0].attempts == 2
    assert ledger.outstanding == 1


def test_events_re_read_after_the_position_that_already_have_rows_are_not_doubled() -> None:
    rows = [
        DeliveryRow(7, "A", State.RETRY, 2, 30.0, C, "boom"),
        DeliveryRow(8, "B", State.DEAD, 3, None, C, "dead"),
    ]
    ledger = _ledger(position=5)
    ledger.restore(rows, now=0.0)
    for event_id, key in ((6, "C"), (7, "A"), (8, "B"), (9, "A")):
        ledger.offer(event_id, key, C, 0.0)
    assert sorted(ledger.items) == [6, 7, 9]
    assert ledger.items[7].attempts == 2, "the row, with its attempts, wins over the re-read event"
    assert _ids(ledger.take_ready(10)) == [6]
    ledger.due(30.0)
    assert _ids(ledger.take_ready(10)) == [7, 9]
    ledger.succeeded(7)
    ledger.succeeded(9)
    ledger.succeeded(6)
    assert ledger.outstanding == 0


def test_a_restored_retry_time_from_another_clock_is_capped_by_the_backoff_cap() -> None:
    ledger = _ledger(backoff=Backoff(base=1.0, cap=10.0))
    ledger.restore([DeliveryRow(1, "A", State.RETRY, 1, 1e12, C)], now=100.0)
    assert ledger.next_due() == 110.0


def test_replayed_rows_queue_behind_the_key_and_are_never_deleted_by_an_older_plan() -> None:
    ledger = _ledger(persist_after=0.0)
    _feed(ledger, "A")
    store = Store()
    store.commit(ledger, 1.0)
    ledger.take_ready(1)
    ledger.succeeded(1)  # its row is to be deleted...
    replayed = DeliveryRow(1, "A", State.PENDING, 0, None, C)
    assert ledger.replay([replayed], now=2.0) == 1  # ...but the operator queued it again first
    assert ledger.replay([replayed], now=2.0) == 0
    plan = store.commit(ledger, 3.0)
    assert 1 not in plan.deletes
    assert _ids(ledger.take_ready(1)) == [1]


def test_a_row_written_from_outside_for_a_held_item_is_rewritten_then_deleted_when_it_finishes() -> None:
    ledger = _ledger(persist_after=100.0)
    _feed(ledger, "A")
    store = Store()
    store.rows[1] = DeliveryRow(1, "A", State.PENDING, 0, None, ())  # `trackwire replay` wrote it
    ledger.adopt_row(1)
    store.commit(ledger, 1.0)
    assert store.rows[1].consumers == C, "our state replaced the outside row"
    ledger.take_ready(1)
    ledger.succeeded(1)
    store.commit(ledger, 2.0)
    assert 1 not in store.rows


def test_a_held_failure_is_never_dead_lettered_whatever_its_attempts() -> None:
    ledger = _ledger(max_attempts=1)
    _feed(ledger, "A")
    ledger.take_ready(1)
    outcome = ledger.failed(1, 0.0, "boom", retry_after=0.0, hold=True)
    assert not outcome.dead
    assert ledger.items[1].state is State.RETRY
    assert ledger.items[1].attempts == 1


# -- take order and read-ahead ------------------------------------------------------------------------


def test_take_ready_hands_out_the_oldest_items_across_keys_first() -> None:
    # A's events are 1, 4, 7; B's 2, 5, 8; C's 3, 6, 9: the four oldest are taken, as chains per key
    ledger = _ledger()
    _feed(ledger, "ABCABCABC")
    assert sorted(_ids(ledger.take_ready(4))) == [1, 2, 3, 4]
    # A runs (1, 4): its 7 waits; B's 5 and C's 6 were not taken, yet their keys run too
    assert _ids(ledger.take_ready(10)) == []
    ledger.succeeded(2)
    ledger.succeeded(3)
    assert _ids(ledger.take_ready(10)) == [5, 6, 8, 9]
    ledger.succeeded(1)
    assert _ids(ledger.take_ready(10)) == [], "A's 4 still runs: 7 waits for it"
    ledger.succeeded(4)
    assert _ids(ledger.take_ready(10)) == [7]


def test_a_chain_cut_by_the_limit_goes_on_in_order_with_the_next_take() -> None:
    ledger = _ledger(max_chain=64)
    _feed(ledger, "AAAAA")
    assert _ids(ledger.take_ready(2)) == [1, 2]
    _feed(ledger, "B", first=6)
    ledger.succeeded(1)
    ledger.succeeded(2)
    assert _ids(ledger.take_ready(2)) == [3, 4]
    ledger.succeeded(3)
    ledger.succeeded(4)
    assert _ids(ledger.take_ready(10)) == [5, 6]


def test_held_up_counts_items_behind_a_retry_or_a_long_running_head() -> None:
    ledger = _ledger(persist_after=5.0)
    _feed(ledger, "AAABBC")
    taken = ledger.take_ready(10, now=0.0)
    assert sorted(_ids(taken)) == [1, 2, 3, 4, 5, 6]
    assert ledger.held_up(1.0) == 0, "nothing has run for persist_after yet"
    ledger.succeeded(6)
    assert ledger.held_up(6.0) == 5, "A's and B's heads have run 6 s: their 3 + 2 items are held up"
    ledger.failed(4, 6.0, "boom")
    ledger.succeeded(1)
    ledger.succeeded(2)
    ledger.succeeded(3)
    assert ledger.held_up(6.0) == 2, "B waits for its retry (4, and 5 behind it)"
