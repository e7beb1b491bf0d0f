"""The durable trigger state is the last checkpoint plus the journal of evaluation steps replayed in order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from trackwire.automations.replay import durable_evaluator
from trackwire.automations.state import MemoryAutomationState, StateBatch
from trackwire.core.event import Event, Ref, dumps
from trackwire.core.triggers import Automation, Evaluator, EventTrigger, Firing
from trackwire.store.sqlite.automation_state import SqliteAutomationState

AUTOS = [Automation("three", EventTrigger(expect=("Note",), for_each=("entity.id",), threshold=3, within=600))]


def note(i: int, shot: int = 1) -> Event:
    return Event(
        source="t", source_id=str(i), type="Note", entity=Ref("Shot", shot), id=i,
        occurred=datetime.fromtimestamp(1_700_000_000 + i, UTC),
    )  # fmt: skip


def test_a_journal_replayed_over_the_checkpoint_rebuilds_the_committed_buckets() -> None:
    state = MemoryAutomationState()
    live = Evaluator(AUTOS)
    log = {i: note(i, shot=i % 2) for i in range(1, 5)}
    # events 1 and 2 are checkpointed; 3 and 4 are only journaled
    for i in (1, 2):
        live.on_event(log[i], 10.0 + i)
    upserts = tuple((k, dumps(live.state[k])) for k in live.dirty)
    state.commit(StateBatch(upserts=upserts, journal=((1, 11.0, 0), (2, 12.0, 0)), checkpoint=True))
    for i in (3, 4):
        live.on_event(log[i], 10.0 + i)
    state.commit(StateBatch(journal=((3, 13.0, 0), (4, 14.0, 0)), applied=(3, 4)))
    assert state.journal() == [(3, 13.0, 0), (4, 14.0, 0)]

    rebuilt, fired = durable_evaluator(state, AUTOS, lambda ids: [log[i] for i in ids])
    assert fired == []
    assert {k: v["times"] for k, v in rebuilt.state.items()} == {k: v["times"] for k, v in live.state.items()}
    # the fifth note on shot 1 fires with the same firing id in the live and the rebuilt evaluator
    fifth = note(5, shot=1)
    assert [f.id for f in rebuilt.on_event(fifth, 15.0)] == [f.id for f in live.on_event(fifth, 15.0)] != []


def test_replaying_a_step_that_fired_yields_the_recorded_firing_again_not_a_new_one() -> None:
    state = MemoryAutomationState()
    live = Evaluator(AUTOS)
    log = {i: note(i) for i in range(1, 4)}
    fired: list[Firing] = []
    for i in (1, 2, 3):
        fired += live.on_event(log[i], 10.0 + i)
    assert state.commit(StateBatch(firings=tuple(fired), journal=tuple((i, 10.0 + i, 0) for i in (1, 2, 3)))) == [
        fired[0].id
    ]
    _, replayed = durable_evaluator(state, AUTOS, lambda ids: [log[i] for i in ids])
    assert [f.id for f in replayed] == [fired[0].id]
    assert state.commit(StateBatch(firings=tuple(replayed))) == []  # recorded once


def test_the_sqlite_journal_survives_a_reopen_and_a_checkpoint_empties_it(tmp_path: Path) -> None:
    state = SqliteAutomationState(tmp_path / "tw.db")
    state.commit(StateBatch(journal=((7, 1.5, 3), (None, 2.5, 0)), applied=(7,)))
    state.close()
    state = SqliteAutomationState(tmp_path / "tw.db")
    try:
        assert state.journal() == [(7, 1.5, 3), (None, 2.5, 0)]
        state.commit(StateBatch(upserts=((("a", "t", "1"), '{"times":[]}'),), journal=((8, 3.0, 0),), checkpoint=True))
        assert state.journal() == []
        assert state.load_state() == {("a", "t", "1"): {"times": []}}
    finally:
        state.close()


def test_outcomes_written_from_many_threads_at_once_are_all_recorded(tmp_path: Path) -> None:
    state = SqliteAutomationState(tmp_path / "tw.db")
    try:
        firings = tuple(
            Firing(f"f{i}", "a", "t", str(i), 1.0, "threshold reached", (i,), 1, (1.0, 1.0), i) for i in range(40)
        )
        state.commit(StateBatch(firings=firings))
        threads = [
            threading.Thread(target=state.set_outcomes, args=(f.id, "succeeded", [{"action": 0, "n": f.key}]))
            for f in firings
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert state.counts() == {"a": {"succeeded": 40}}
        record = state.get_firing("f7")
        assert record is not None and record.outcomes == [{"action": 0, "n": "7"}]
    finally:
        state.close()
