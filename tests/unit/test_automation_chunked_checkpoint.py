"""A checkpoint written in chunks, with evaluation steps committed between its transactions: a kill after any
of them restores exactly the committed state (the previous checkpoint and its whole journal before the flip,
the new checkpoint and the later steps after it), and rows staged by a write cut short are ignored and
cleaned up by the next one."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

from trackwire.automations.checkpoint import CheckpointBuilder
from trackwire.automations.replay import durable_evaluator
from trackwire.automations.state import StateBatch
from trackwire.core.event import Event, dumps, loads
from trackwire.core.triggers import Evaluator
from trackwire.store.sqlite.automation_state import SqliteAutomationState

from .test_automation_checkpoint import AUTOS, note


class Scenario:
    """A live evaluator whose steps are journaled to a SQLite state, as the service does."""

    def __init__(self, path: Path, chunk: int = 50) -> None:
        self.path = path
        self.rng = random.Random(17)
        self.log: dict[int, Event] = {}
        self.live = Evaluator(AUTOS)
        self.state = SqliteAutomationState(path, chunk=chunk)
        self.ident = 1
        self.steps: list[tuple[int | None, float, int]] = []  # evaluated, not yet handed to a batch

    def evaluate(self, count: int) -> None:
        for _ in range(count):
            self.log[self.ident] = note(self.ident, self.rng.randrange(300))
            self.live.on_event(self.log[self.ident], 10.0 + self.ident)
            self.steps.append((self.ident, 10.0 + self.ident, 0))
            self.ident += 1

    def commit(self, count: int) -> None:
        """Evaluate ``count`` events and commit them (a group commit)."""
        self.evaluate(count)
        steps, self.steps = tuple(self.steps), []
        self.state.commit(StateBatch(journal=steps, applied=tuple(s[0] for s in steps if s[0] is not None)))

    def take(self) -> StateBatch:
        """A checkpoint batch taken now: the state as of now, with the steps evaluated since the last commit."""
        upserts, deletes = CheckpointBuilder.start(self.live).finish(self.live)
        steps, self.steps = tuple(self.steps), []
        applied = tuple(s[0] for s in steps if s[0] is not None)
        return StateBatch(
            upserts=dict(upserts).items(), deletes=deletes, journal=steps, applied=applied, checkpoint=True
        )

    def restored_from(self, path: Path) -> dict[tuple[str, str, str], object]:
        """What a daemon restarted on the database at ``path`` rebuilds: checkpoint + journal replayed."""
        state = SqliteAutomationState(path)
        try:
            rebuilt, _ = durable_evaluator(state, AUTOS, lambda ids: [self.log[i] for i in ids])
        finally:
            state.close()
        return as_stored(rebuilt)

    def killed_now(self, name: str) -> dict[tuple[str, str, str], object]:
        """The state a restart after a SIGKILL at this instant restores: what SQLite has committed, copied."""
        copy = self.path.parent / f"{name}.db"
        source, target = sqlite3.connect(self.path), sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return self.restored_from(copy)


def as_stored(evaluator: Evaluator) -> dict[tuple[str, str, str], object]:
    return {k: loads(dumps(v)) for k, v in evaluator.state.items()}


def staged_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM automation_staged").fetchone()[0])
    finally:
        conn.close()


def test_a_kill_after_any_transaction_of_a_chunked_checkpoint_restores_the_committed_state(tmp_path: Path) -> None:
    s = Scenario(tmp_path / "tw.db")
    s.commit(500)
    s.state.commit(s.take())  # a first checkpoint, written whole
    s.commit(300)
    s.evaluate(7)  # evaluated but not committed: they ride on the checkpoint's batch
    batch = s.take()
    assert len(batch.upserts) > 10 * s.state.chunk  # many chunks
    _, write = s.state.start_checkpoint(batch)
    committed_state = as_stored(s.live)  # the checkpoint's batch is durable: its steps are in the journal
    assert s.killed_now("after-batch") == committed_state
    boundaries = 0
    flipped_at = None
    while write.step():
        boundaries += 1
        s.commit(2)  # evaluation steps committed between the checkpoint's transactions
        committed_state = as_stored(s.live)
        if write.flipped and flipped_at is None:
            flipped_at = boundaries
        assert s.killed_now(f"kill-{boundaries}") == committed_state, f"killed after transaction {boundaries}"
    assert flipped_at is not None and 10 < flipped_at < boundaries  # chunks before the flip, tidying after it
    assert s.restored_from(s.path) == as_stored(s.live)
    assert staged_rows(s.path) == 0  # every staged row folded into automation_state
    s.state.close()


def test_a_write_abandoned_before_the_flip_leaves_the_previous_checkpoint_and_its_whole_journal(
    tmp_path: Path,
) -> None:
    s = Scenario(tmp_path / "tw.db")
    s.commit(400)
    s.state.commit(s.take())
    before_state, before_journal = s.state.load_state(), s.state.journal()
    assert before_journal == []
    s.commit(200)
    _, write = s.state.start_checkpoint(s.take())
    for _ in range(5):  # some chunks staged, with steps committed between them; then the process dies
        assert write.step()
        s.commit(3)
    assert not write.flipped and staged_rows(s.path) > 0
    s.state.close()

    s.state = SqliteAutomationState(s.path, chunk=s.state.chunk)
    assert s.state.load_state() == before_state  # the half-written rows are not seen
    assert [e for e, _, _ in s.state.journal()] == list(range(401, s.ident))  # every step since, in order
    assert s.restored_from(s.path) == as_stored(s.live)
    s.live, _ = durable_evaluator(s.state, AUTOS, lambda ids: [s.log[i] for i in ids])  # as the restart does

    # the next checkpoint deletes the abandoned rows, and its own state is what is read afterwards
    s.commit(10)
    s.state.commit(s.take())
    assert staged_rows(s.path) == 0
    assert s.state.journal() == []
    assert s.state.load_state() == as_stored(s.live)
    s.commit(5)
    assert s.restored_from(s.path) == as_stored(s.live)
    s.state.close()


def test_after_the_flip_readers_see_the_new_checkpoint_and_only_the_later_steps_before_it_is_folded(
    tmp_path: Path,
) -> None:
    s = Scenario(tmp_path / "tw.db")
    s.commit(300)
    s.state.commit(s.take())
    s.commit(300)
    _, write = s.state.start_checkpoint(s.take())
    checkpointed = as_stored(s.live)
    while not write.flipped:
        assert write.step()
        s.commit(1)
    later = list(range(601, s.ident))
    s.state.close()  # killed right after the flip, nothing folded yet

    s.state = SqliteAutomationState(s.path, chunk=s.state.chunk)
    assert staged_rows(s.path) > 0  # not folded yet: read through the staging overlay
    assert s.state.load_state() == checkpointed  # the checkpoint as taken
    assert [e for e, _, _ in s.state.journal()] == later  # only the steps committed after its batch
    assert s.restored_from(s.path) == as_stored(s.live)
    # what `automations show` lists for one automation: the same overlaid rows
    listed = {("three", p, k): v for p, k, v in s.state.state_of("three")}
    assert listed and listed == {k: v for k, v in checkpointed.items() if k[0] == "three"}
    s.state.close()


def test_a_store_checkpointed_before_chunked_writes_reads_the_same_after_the_upgrade(tmp_path: Path) -> None:
    from trackwire.store.sqlite.migrations import migrate

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(conn, target=6) == 6
        conn.execute("INSERT INTO automation_state VALUES ('three', 't', '1', '{\"times\": []}', 'then')")
        conn.executemany("INSERT INTO automation_journal (event_id, at, low) VALUES (?, ?, 0)", [(5, 1.0), (6, 2.0)])
    finally:
        conn.close()
    state = SqliteAutomationState(path)
    try:
        assert state.load_state() == {("three", "t", "1"): {"times": []}}
        assert state.journal() == [(5, 1.0, 0), (6, 2.0, 0)]  # all replayed: no chunked checkpoint covers them
        state.commit(StateBatch(upserts=((("three", "t", "2"), "{}"),), checkpoint=True))
        assert state.journal() == []
        assert state.load_state() == {("three", "t", "1"): {"times": []}, ("three", "t", "2"): {}}
    finally:
        state.close()


class _FlipAfterStateRead:
    """A reader's connection that lets the writer finish a checkpoint right after the state entries are read
    (what ``automations show`` in another process can meet)."""

    def __init__(self, conn: sqlite3.Connection, finish: object) -> None:
        self.conn, self.finish = conn, finish

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        cursor = self.conn.execute(sql, *args)
        if "automation_state" in sql and callable(self.finish):
            rows = cursor.fetchall()
            self.finish()
            self.finish = None
            return _Rows(rows)  # type: ignore[return-value]
        return cursor

    def close(self) -> None:
        self.conn.close()


class _Rows:
    def __init__(self, rows: list[object]) -> None:
        self.rows = rows

    def fetchall(self) -> list[object]:
        return self.rows


def test_a_reader_in_another_process_sees_one_checkpoint_with_its_own_journal_even_if_it_flips_meanwhile(
    tmp_path: Path,
) -> None:
    from trackwire.store.sqlite.migrations import use_wal

    first = sqlite3.connect(tmp_path / "auto.db")
    use_wal(first)  # as the store leaves its file: a reader's snapshot does not block the writer
    first.close()
    s = Scenario(tmp_path / "auto.db")
    s.commit(40)
    s.state.commit(s.take())  # a first checkpoint, fully written
    s.commit(30)
    expected = s.restored_from(s.path)
    _, write = s.state.start_checkpoint(s.take())  # a second one, written by the daemon below

    def finish_the_write() -> None:
        while write.step():
            pass

    reader = SqliteAutomationState(s.path)
    try:
        reader._conn = _FlipAfterStateRead(reader._conn, finish_the_write)  # type: ignore[assignment]
        rebuilt, _ = durable_evaluator(reader, AUTOS, lambda ids: [s.log[i] for i in ids])
    finally:
        reader.close()
    assert write.flipped
    assert as_stored(rebuilt) == expected, "old entries replayed with the new, shortened journal"
