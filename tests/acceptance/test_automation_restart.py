"""Automations survive SIGKILL: half-full buckets come back and fire at the right count, exactly once."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from tests.acceptance.harness import daemon, write_config
from tests.conftest import wait_for
from trackwire.core.event import Event, Ref
from trackwire.store.sqlite.automation_state import SqliteAutomationState

pytestmark = pytest.mark.slow

BURST = """
[[automation]]
name = "five-notes"
[automation.trigger]
expect = ["Shotgun_Note_New"]
for_each = ["entity.id"]
threshold = 5
within = "1h"
[[automation.actions]]
type = "emit"
event_type = "trackwire.notes.burst"
data = { shot = "{{ key }}", count = "{{ count }}" }
"""


def setup(tmp_path: Path) -> Path:
    config = write_config(tmp_path, [])
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "burst.toml").write_text(BURST)
    with config.open("a") as f:
        f.write('[automations]\npath = "automations"\nsweep_interval = 0.1\nlateness = 3600\n')
    return config


def notes(first: int, shots: list[int]) -> list[Event]:
    return [
        Event(source="sg", source_id=f"n{first + i}", type="Shotgun_Note_New", entity=Ref("Shot", s))
        for i, s in enumerate(shots)
    ]


def state_of(db: Path) -> dict[str, int]:
    state = SqliteAutomationState(db)
    try:
        return {k: len(v["times"]) for _p, k, v in state.state_of("five-notes")}
    finally:
        state.close()


def test_half_full_buckets_survive_a_sigkill_and_fire_at_the_right_count(tmp_path: Path) -> None:
    config = setup(tmp_path)
    with daemon(config) as d:
        d.start()
        d.wait_running()
        wait_for(lambda: d.durable_state("automations")[0] >= 0, 30, what="the automations group")
        with d.store() as store:
            store.append(notes(0, [1, 1, 1, 2, 2]))
        wait_for(lambda: state_of(d.db) == {"1": 3, "2": 2}, 30, what="the buckets to be durable")
        d.kill()
        d.start()
        d.wait_running()
        with d.store() as store:
            store.append(notes(5, [1, 1, 2, 2]))
        wait_for(lambda: state_of(d.db) == {"2": 4}, 30, what="shot 1 to fire and shot 2 to hold four")
        state = SqliteAutomationState(d.db)
        try:
            wait_for(lambda: [f.status for f in state.firings("five-notes")] == ["succeeded"], 30, what="the action")
            (firing,) = state.firings("five-notes")
            assert firing.key == "1" and firing.events == (1, 2, 3, 6, 7)
        finally:
            state.close()
        with d.store() as store:
            wait_for(lambda: store.count_events() == 10, 30, what="the emitted event")
            emitted = store.get_event(10)
            assert emitted is not None and emitted.type == "trackwire.notes.burst"
            assert emitted.data["shot"] == "1" and emitted.data["count"] == "5" and emitted.follows == 7


def test_killed_at_random_moments_every_shot_fires_once_per_five_notes(tmp_path: Path) -> None:
    config = setup(tmp_path)
    rng = random.Random(11)
    sent: list[int] = []
    shot_of: dict[int, int] = {}  # note id -> shot (the firings' emitted events take ids between the notes)
    with daemon(config) as d:
        for life in range(3):
            d.start()
            d.wait_running()
            if life == 0:  # a new consumer group starts at the log's end: let it exist before the first notes
                wait_for(lambda: d.durable_state("automations")[0] >= 0, 30, what="the automations group")
            shots = [rng.randrange(4) for _ in range(40)]
            with d.store() as store:
                for chunk in range(0, 40, 8):
                    appended = store.append(notes(len(sent) + chunk, shots[chunk : chunk + 8]))
                    for event_id, shot in zip(appended.ids, shots[chunk : chunk + 8], strict=True):
                        assert event_id is not None
                        shot_of[event_id] = shot
            sent.extend(shots)
            d.kill()
        d.start()
        d.wait_running()
        expected_buckets = {str(s): sent.count(s) % 5 for s in set(sent) if sent.count(s) % 5}
        wait_for(lambda: state_of(d.db) == expected_buckets, 60, what=f"buckets {expected_buckets}")
        state = SqliteAutomationState(d.db)
        try:
            want = sum(sent.count(s) // 5 for s in set(sent))
            wait_for(
                lambda: sum(1 for f in state.firings("five-notes", 1000) if f.status == "succeeded") == want,
                60,
                what=f"{want} firings to run their action",
            )
            firings = state.firings("five-notes", 1000)
            assert len(firings) == want
            used = [i for f in firings for i in f.events]
            assert len(used) == len(set(used)) == 5 * want, "no note counted twice"
            for f in firings:
                assert {shot_of[i] for i in f.events} == {int(f.key)}
        finally:
            state.close()
        with d.store() as store:
            wait_for(lambda: store.count_events() == len(sent) + want, 30, what="one emitted event per firing")


def checkpoint_rows(db: Path) -> tuple[int, int]:
    """Rows staged for a checkpoint that is not current (being written, or cut short), and rows of the current
    one not folded into automation_state yet."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        (current,) = conn.execute("SELECT current FROM automation_checkpoint").fetchone()
        ahead = conn.execute("SELECT count(*) FROM automation_staged WHERE ckpt > ?", (current,)).fetchone()[0]
        unfolded = conn.execute("SELECT count(*) FROM automation_staged WHERE ckpt = ?", (current,)).fetchone()[0]
        return int(ahead), int(unfolded)
    finally:
        conn.close()


def test_a_sigkill_while_a_checkpoint_is_written_in_chunks_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """One row per transaction, so a checkpoint of 240 buckets takes hundreds of transactions: the daemon is
    killed once while the rows are staged (before the flip) and once while they are folded in (after it)."""
    config = setup(tmp_path)
    with config.open("a") as f:
        f.write("checkpoint_interval = 0.2\ncheckpoint_chunk = 1\n")
    shots = range(240)
    first = [s for s in shots for _ in range(1 + s % 4)]  # 1-4 notes each: every bucket half full
    with daemon(config) as d:
        d.start()
        d.wait_running()
        wait_for(lambda: d.durable_state("automations")[0] >= 0, 30, what="the automations group")
        with d.store() as store:
            store.append(notes(0, first))
        wait_for(lambda: checkpoint_rows(d.db)[0] > 20, 60, what="a checkpoint half written")
        d.kill()
        assert checkpoint_rows(d.db)[0] > 0, "killed before the flip"

        d.start()  # restores the previous checkpoint and the whole journal; checkpoints it at start
        d.wait_running()
        wait_for(lambda: checkpoint_rows(d.db)[1] > 20, 60, what="a checkpoint current and half folded")
        d.kill()
        assert checkpoint_rows(d.db)[1] > 0, "killed after the flip, before the fold ended"

        d.start()
        d.wait_running()
        assert state_of(d.db) == {str(s): 1 + s % 4 for s in shots}
        second = [s for s in shots for _ in range(4 - s % 4)]  # each shot's fifth note comes last
        with d.store() as store:
            appended = store.append(notes(len(first), second))
        wait_for(lambda: state_of(d.db) == {}, 60, what="every shot to fire")
        state = SqliteAutomationState(d.db)
        try:
            firings = state.firings("five-notes", 1000)
            assert sorted(int(f.key) for f in firings) == list(shots), "each shot fired once"
            used = [i for f in firings for i in f.events]
            assert len(used) == len(set(used)) == 5 * len(shots), "no note counted twice"
            assert max(used) == max(i for i in appended.ids if i is not None)
        finally:
            state.close()
        wait_for(lambda: checkpoint_rows(d.db) == (0, 0), 60, what="the abandoned rows to be cleaned up")
