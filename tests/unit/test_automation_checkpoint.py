"""A checkpoint built in slices between evaluations holds exactly the state at the moment it is taken, and one
interrupted (abandoned, or cut short by a crash) leaves the durable state replayable to the same buckets."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from pathlib import Path

from trackwire.automations.checkpoint import CHECK_EVERY, CheckpointBuilder
from trackwire.automations.replay import durable_evaluator
from trackwire.automations.state import StateBatch
from trackwire.core.event import Event, Ref, dumps, loads
from trackwire.core.triggers import Automation, CompoundTrigger, Evaluator, EventTrigger
from trackwire.store.sqlite.automation_state import SqliteAutomationState

AUTOS = [
    Automation("three", EventTrigger(expect=("Note",), for_each=("entity.id",), threshold=3, within=600)),
    Automation("two", EventTrigger(expect=("Note",), for_each=("entity.id",), threshold=2, within=600)),
    Automation(
        "both",
        CompoundTrigger(
            (
                EventTrigger(expect=("Note",), for_each=("entity.id",), threshold=2, within=600),
                EventTrigger(expect=("Note",), for_each=("entity.id",), threshold=5, within=600),
            ),
            require=2,
            within=600,
        ),
    ),
]


def note(i: int, shot: int) -> Event:
    return Event(
        source="t", source_id=str(i), type="Note", entity=Ref("Shot", shot), id=i,
        occurred=datetime.fromtimestamp(1_700_000_000 + i, UTC),
    )  # fmt: skip


def one_slice() -> float:
    """A clock for which every ``step`` is past its deadline after its first few keys (slices by count)."""
    return next(_ticks)


_ticks = itertools.count()


def as_stored(evaluator: Evaluator) -> dict[tuple[str, str, str], object]:
    return {k: loads(dumps(v)) for k, v in evaluator.state.items()}


def test_events_evaluated_between_slices_are_in_the_checkpoint_taken_after_them() -> None:
    rng = random.Random(3)
    live = Evaluator(AUTOS)
    for i in range(1, 1200):
        live.on_event(note(i, rng.randrange(400)), 10.0)
    build = CheckpointBuilder.start(live, final_keys=10)
    first_round = len(build.pending)
    assert first_round > 3 * CHECK_EVERY
    ident = 1200
    while not build.ready(live):
        build.step(live, 0.5, clock=one_slice)
        for _ in range(5):  # events between slices: they change buckets already serialised, and add new ones
            live.on_event(note(ident, rng.randrange(500)), 10.0)
            ident += 1
    assert build.slices >= first_round // CHECK_EVERY
    upserts, deletes = build.finish(live)
    assert live.dirty == set()
    assert {k: loads(v) for k, v in upserts} == as_stored(live)  # every entry, as it is now
    assert deletes and not set(deletes) & live.state.keys()  # fired buckets are deleted, not left stale


def test_a_checkpoint_interrupted_by_a_crash_or_abandoned_and_restarted_restores_the_exact_state(
    tmp_path: Path,
) -> None:
    rng = random.Random(5)
    log: dict[int, Event] = {}
    live = Evaluator(AUTOS)
    state = SqliteAutomationState(tmp_path / "tw.db")
    ident = 1

    def evaluate(count: int) -> None:
        """Events evaluated and journaled (a group commit), as the service does between slices."""
        nonlocal ident
        steps = []
        for _ in range(count):
            log[ident] = note(ident, rng.randrange(300))
            live.on_event(log[ident], 10.0 + ident)
            steps.append((ident, 10.0 + ident, 0))
            ident += 1
        state.commit(StateBatch(journal=tuple(steps), applied=tuple(s[0] for s in steps)))

    def restarted() -> dict[tuple[str, str, str], object]:
        nonlocal state
        state.close()  # nothing of a build is written before it is taken: a kill here loses only the build
        state = SqliteAutomationState(tmp_path / "tw.db")
        rebuilt, _ = durable_evaluator(state, AUTOS, lambda ids: [log[i] for i in ids])
        return as_stored(rebuilt)

    evaluate(600)
    upserts, deletes = CheckpointBuilder.start(live).finish(live)
    state.commit(StateBatch(upserts=upserts, deletes=deletes, checkpoint=True))
    evaluate(400)

    # a build cut short by a crash, with events journaled between its slices
    build = CheckpointBuilder.start(live, final_keys=10)
    build.step(live, 0.5, clock=one_slice)
    evaluate(20)
    build.step(live, 0.5, clock=one_slice)
    assert build.pending and build.rows
    assert restarted() == as_stored(live)

    # abandoned (its keys back to dirty), more events, a new build resumed over several slices and taken
    build.abandon(live)
    evaluate(30)
    build = CheckpointBuilder.start(live, final_keys=10)
    while not build.ready(live):
        build.step(live, 0.5, clock=one_slice)
        evaluate(3)
    upserts, deletes = build.finish(live)
    state.commit(StateBatch(upserts=upserts, deletes=deletes, checkpoint=True))
    assert state.journal() == []
    assert restarted() == as_stored(live)
    evaluate(10)  # and the journal after it replays over it
    assert restarted() == as_stored(live)
    state.close()
