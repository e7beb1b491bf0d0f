"""A hypothesis state machine of the delivery rules (GroupLedger) against a simple model.

The machine plays the runtime: it appends events, claims ready items and runs them as a worker does
(a chain of one key runs in order; after a failure the rest of the chain is reported "not run"), makes
them succeed, fail, fail finally or get interrupted, moves time, plans and commits checkpoints to a
simulated durable store (a position plus rows), and crashes: the ledger and everything in memory are
thrown away and a new ledger is rebuilt from the durable store exactly as the runtime does (``restore``
the rows, then ``offer`` every event after the durable position).

The model is deliberately naive: per key, the list of unfinished items in the order the ledger must
run them, which of them wait for a retry (and until when), the attempts counted for each, what ever
succeeded, and what is dead.
"""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trackwire.core.backoff import Backoff
from trackwire.core.ledger import Checkpoint, DeliveryRow, GroupLedger, Item, State

KEYS = ("A", "B", "C")
CONSUMERS = ("group.callback",)
MAX_ATTEMPTS = 3
MAX_CHAIN = 2
PERSIST_AFTER = 2.0
BACKOFF = Backoff(base=1.0, cap=8.0)
EPSILON = 1e-9


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.log: list[tuple[str, bool]] = []  # event id - 1 -> (key, matched by the group)
        self.durable_position = 0
        self.durable_rows: dict[int, DeliveryRow] = {}
        self.in_flight: Checkpoint | None = None
        # the model
        self.order: dict[str, list[int]] = defaultdict(list)  # unfinished items per key, in run order
        self.retry_at: dict[int, float] = {}  # items waiting to retry
        self.attempts: dict[int, int] = defaultdict(int)
        self.succeeded_ever: set[int] = set()
        self.dead: set[int] = set()
        self.dead_by_final: dict[int, bool] = {}
        self.lanes: dict[str, list[int]] = {}  # what the worker runs, per key, in order
        self.ledger = self._new_ledger(0)

    @staticmethod
    def _new_ledger(position: int) -> GroupLedger:
        return GroupLedger(
            position=position,
            max_attempts=MAX_ATTEMPTS,
            backoff=BACKOFF,
            persist_after=PERSIST_AFTER,
            max_chain=MAX_CHAIN,
            rng=random.Random(0),
        )

    def _key(self, event_id: int) -> str:
        return self.log[event_id - 1][0]

    def _live(self) -> set[int]:
        return {event_id for ids in self.order.values() for event_id in ids}

    def _running(self) -> set[int]:
        return {event_id for lane in self.lanes.values() for event_id in lane}

    def _finish(self, event_id: int) -> None:
        self.order[self._key(event_id)].remove(event_id)
        self.retry_at.pop(event_id, None)

    # -- facts -----------------------------------------------------------------------------------

    @rule(key=st.sampled_from(KEYS), matched=st.sampled_from([True, True, True, False]))
    def append(self, key: str, matched: bool) -> None:
        self.log.append((key, matched))
        event_id = len(self.log)
        self.ledger.offer(event_id, key, CONSUMERS if matched else (), self.now)
        if matched:
            self.order[key].append(event_id)

    @rule(limit=st.integers(1, 6))
    def claim(self, limit: int) -> None:
        self._claim(limit)

    def _claim(self, limit: int) -> list[Item]:
        items = self.ledger.take_ready(limit, self.now)
        assert len(items) <= limit
        by_key: dict[str, list[int]] = defaultdict(list)
        for item in items:
            assert item.event_id not in self._running(), f"{item.event_id} handed out twice"
            assert item.key == self._key(item.event_id)
            assert item.attempts == self.attempts[item.event_id]
            by_key[item.key].append(item.event_id)
        for key, ids in by_key.items():
            assert not self.lanes.get(key), f"key {key}: a second chain while {self.lanes[key]} runs"
            assert ids == self.order[key][: len(ids)], f"key {key}: ran {ids}, model order {self.order[key]}"
            assert len(ids) <= MAX_CHAIN
            for event_id in ids:
                assert event_id not in self.retry_at, f"{event_id} ran before its retry time"
                earlier = [
                    e
                    for e in range(1, event_id)
                    if self.log[e - 1] == (key, True) and e not in self.succeeded_ever and e not in self.dead
                ]
                assert set(earlier) <= set(ids[: ids.index(event_id)]), (
                    f"{event_id} started while earlier {earlier} of key {key} are unfinished"
                )
            if len(items) < limit and len(ids) < min(MAX_CHAIN, len(self.order[key])):
                assert self.order[key][len(ids)] in self.retry_at, f"key {key}: chain cut short for no reason"
            self.lanes[key] = ids
        if len(items) < limit:
            for key, ids in self.order.items():
                if ids and not self.lanes.get(key):
                    assert ids[0] in self.retry_at, f"key {key}: head {ids[0]} is runnable but was not handed out"
        return items

    def _front(self, data: st.DataObject) -> tuple[str, int]:
        key = data.draw(st.sampled_from(sorted(k for k, lane in self.lanes.items() if lane)))
        return key, self.lanes[key][0]

    def _not_run(self, key: str) -> None:
        """The worker reports the rest of the chain as not run."""
        for event_id in self.lanes.pop(key, [])[1:]:
            self.ledger.interrupted(event_id)

    @precondition(lambda self: any(self.lanes.values()))
    @rule(data=st.data())
    def succeed(self, data: st.DataObject) -> None:
        key, event_id = self._front(data)
        self.lanes[key].pop(0)
        if not self.lanes[key]:
            del self.lanes[key]
        self.ledger.succeeded(event_id)
        self.succeeded_ever.add(event_id)
        self._finish(event_id)

    @precondition(lambda self: any(self.lanes.values()))
    @rule(data=st.data(), final=st.sampled_from([False, False, False, True]), after=st.sampled_from([None, 0.0, 5.0]))
    def fail(self, data: st.DataObject, final: bool, after: float | None) -> None:
        key, event_id = self._front(data)
        self.attempts[event_id] += 1
        outcome = self.ledger.failed(event_id, self.now, "boom", "Traceback", retry_after=after, final=final)
        expect_dead = final or self.attempts[event_id] >= MAX_ATTEMPTS
        assert outcome.dead is expect_dead
        assert outcome.attempts == self.attempts[event_id]
        if outcome.dead:
            assert outcome.retry_at is None
            self.dead.add(event_id)
            self.dead_by_final[event_id] = final
            self._finish(event_id)
        else:
            assert outcome.retry_at is not None
            if after is not None:
                assert outcome.retry_at == self.now + after
            else:
                ceiling = BACKOFF.ceiling(self.attempts[event_id])
                assert self.now + 0.1 * ceiling - EPSILON <= outcome.retry_at <= self.now + ceiling + EPSILON
            self.retry_at[event_id] = outcome.retry_at
        self._not_run(key)

    @precondition(lambda self: any(self.lanes.values()))
    @rule(data=st.data())
    def interrupt(self, data: st.DataObject) -> None:
        key, event_id = self._front(data)
        self.ledger.interrupted(event_id)
        self._not_run(key)

    @precondition(lambda self: any(self.lanes.values()))
    @rule()
    def worker_dies(self) -> None:
        for event_id in sorted(self._running()):
            self.ledger.interrupted(event_id)
        self.lanes.clear()

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._due()

    def _due(self) -> None:
        ripe = [e for e, at in self.retry_at.items() if at <= self.now]
        assert self.ledger.due(self.now) == len(ripe)
        for event_id in ripe:
            del self.retry_at[event_id]

    # -- durability ------------------------------------------------------------------------------

    @precondition(lambda self: self.in_flight is None)
    @rule(persist_all=st.sampled_from([False, False, True]))
    def plan(self, persist_all: bool) -> None:
        plan = self.ledger.checkpoint(self.now, persist_all)
        assert plan.position >= self.durable_position
        assert plan.position <= len(self.log)
        assert not {r.event_id for r in plan.upserts} & set(plan.deletes), "a row written and deleted at once"
        self.in_flight = plan

    @precondition(lambda self: self.in_flight is not None)
    @rule()
    def commit(self) -> None:
        plan = self.in_flight
        assert plan is not None
        for row in plan.upserts:
            self.durable_rows[row.event_id] = row
        for event_id in plan.deletes:
            self.durable_rows.pop(event_id, None)
        self.durable_position = max(self.durable_position, plan.position)
        self.ledger.committed(plan)
        self.in_flight = None

    @rule()
    def crash(self) -> None:
        """Kill -9: only the durable store survives. Rebuild as the runtime's start-up does."""
        self.in_flight = None
        self.lanes.clear()
        position = self.durable_position
        rows = sorted(self.durable_rows.values(), key=lambda r: r.event_id)
        self.ledger = self._new_ledger(position)
        self.ledger.restore(list(rows), self.now)
        for event_id in range(position + 1, len(self.log) + 1):
            key, matched = self.log[event_id - 1]
            self.ledger.offer(event_id, key, CONSUMERS if matched else (), self.now)
        # the model, rebuilt from the same facts
        self.order = defaultdict(list)
        self.retry_at = {}
        self.attempts = defaultdict(int)
        self.dead = {r.event_id for r in rows if r.state is State.DEAD}
        for row in rows:
            self.attempts[row.event_id] = row.attempts
            if row.state is State.DEAD:
                continue
            self.order[row.key].append(row.event_id)
            if row.state is State.RETRY and row.retry_at is not None:
                self.retry_at[row.event_id] = min(row.retry_at, self.now + BACKOFF.cap)
        for event_id in range(position + 1, len(self.log) + 1):
            key, matched = self.log[event_id - 1]
            if matched and event_id not in self.durable_rows:
                self.order[key].append(event_id)

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def the_ledger_holds_exactly_the_unfinished_items(self) -> None:
        assert self.ledger.outstanding == len(self._live())
        assert set(self.ledger.items) == self._live()

    @invariant()
    def running_items_are_the_ones_the_worker_runs(self) -> None:
        assert self.ledger.running_ids == self._running()
        assert all(len(lane) <= MAX_CHAIN for lane in self.lanes.values())

    @invariant()
    def the_durable_position_and_rows_cover_every_unfinished_event(self) -> None:
        for event_id in range(1, self.durable_position + 1):
            _key, matched = self.log[event_id - 1]
            if matched and event_id not in self.succeeded_ever:
                assert event_id in self.durable_rows, (
                    f"event {event_id} is at or below the durable position {self.durable_position}, "
                    "has never succeeded and has no row: a crash now would lose it"
                )

    @invariant()
    def durable_dead_rows_are_dead_in_the_model(self) -> None:
        for event_id, row in self.durable_rows.items():
            if row.state is State.DEAD:
                assert event_id in self.dead

    @invariant()
    def the_next_due_time_is_the_earliest_retry(self) -> None:
        assert self.ledger.next_due() == (min(self.retry_at.values()) if self.retry_at else None)

    # -- draining --------------------------------------------------------------------------------

    def teardown(self) -> None:
        """Let everything finish: every appended event ends succeeded or dead, and the store agrees."""
        if self.in_flight is not None:
            self.commit()
        for _ in range(10 * len(self.log) + 10):
            if not self._live():
                break
            if self.retry_at:
                self.now = max(self.now, max(self.retry_at.values()))
                self._due()
            self._claim(1000)
            assert self.lanes, f"nothing runnable although {sorted(self._live())} are unfinished"
            for key in list(self.lanes):
                for event_id in self.lanes.pop(key):
                    self.ledger.succeeded(event_id)
                    self.succeeded_ever.add(event_id)
                    self._finish(event_id)
        assert not self._live(), f"{sorted(self._live())} never finished"
        assert self.ledger.outstanding == 0
        self.plan(False)
        self.commit()
        for event_id, (_key, matched) in enumerate(self.log, start=1):
            if matched:
                assert event_id in self.succeeded_ever or event_id in self.dead, f"event {event_id} was lost"
        assert self.durable_position == len(self.log)
        assert {e for e, r in self.durable_rows.items()} == self.dead, "only dead letters keep rows"
        for event_id in self.dead:
            row = self.durable_rows[event_id]
            assert row.state is State.DEAD
            assert row.attempts == self.attempts[event_id]
            if not self.dead_by_final[event_id]:
                assert row.attempts == MAX_ATTEMPTS
            assert row.error == "boom"
            assert row.traceback == "Traceback"
        assert self.ledger.checkpoint(self.now).empty


LedgerMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_delivery_rules_hold_against_the_model = LedgerMachine.TestCase
