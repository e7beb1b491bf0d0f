"""The JobStore contract, run against every adapter (in-memory and SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trackwire.core.jobs import Job, Settlement
from trackwire.ports import JobStore
from trackwire.store.memory_jobs import MemoryJobs
from trackwire.store.sqlite.jobs import SqliteJobs


@pytest.fixture(params=["memory", "sqlite"])
def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    store: JobStore = MemoryJobs() if request.param == "memory" else SqliteJobs(tmp_path / "tw.db")
    assert isinstance(store, JobStore)
    yield store
    store.close()


def new(job_id: str, **fields: object) -> Job:
    values: dict[str, object] = {
        "id": job_id,
        "key": f"key-{job_id}",
        "action": "loco.sync",
        "tracker": "kitsu",
        "invocation": {"user": {"login": "jane"}, "selected": ["a"]},
        "background": True,
        "created": 1.0,
    }
    return Job(**{**values, **fields})  # type: ignore[arg-type]


def test_jobs_are_claimed_oldest_first_and_only_once(jobs: JobStore) -> None:
    first, second = jobs.insert(new("a")), jobs.insert(new("b"))
    assert first.seq < second.seq and jobs.get("a") == first
    claimed = jobs.claim("runner-1", 10.0)
    assert claimed is not None and claimed.id == "a"
    assert (claimed.state, claimed.owner, claimed.attempts, claimed.started, claimed.beat) == (
        "running",
        "runner-1",
        1,
        10.0,
        10.0,
    )
    again = jobs.claim("runner-2", 11.0)
    assert again is not None and again.id == "b"
    assert jobs.claim("runner-3", 12.0) is None


def test_only_the_owner_reports_and_finishes_and_a_finished_job_stays_finished(jobs: JobStore) -> None:
    jobs.insert(new("a"))
    jobs.claim("runner-1", 10.0)
    assert not jobs.report("a", "runner-2", 0.5, "x", 11.0)
    assert jobs.report("a", "runner-1", 0.5, "half", 11.0)
    got = jobs.get("a")
    assert got is not None and (got.progress, got.message, got.beat) == (0.5, "half", 11.0)
    assert not jobs.finish("a", "runner-2", "succeeded", "", None, None, 12.0)
    assert jobs.finish("a", "runner-1", "succeeded", "ok", {"success": True, "message": "ok"}, None, 12.0)
    assert not jobs.finish("a", "runner-1", "failed", "late", None, "late", 13.0)
    assert not jobs.report("a", "runner-1", 0.9, "late", 13.0)
    done = jobs.get("a")
    assert done is not None
    assert (done.state, done.progress, done.result, done.finished) == (
        "succeeded",
        1.0,
        {"success": True, "message": "ok"},
        12.0,
    )


def test_heartbeats_touch_only_the_owners_running_jobs(jobs: JobStore) -> None:
    jobs.insert(new("a"))
    jobs.insert(new("b"))
    jobs.claim("runner-1", 10.0)
    jobs.claim("runner-2", 10.0)
    assert jobs.heartbeat("runner-1", 20.0) == 1
    beats = {j.id: j.beat for j in jobs.running()}
    assert beats == {"a": 20.0, "b": 10.0}


def test_a_stale_job_is_settled_only_if_nobody_touched_it_since(jobs: JobStore) -> None:
    jobs.insert(new("a"))
    jobs.insert(new("b"))
    seen_a = jobs.claim("dead", 10.0)
    seen_b = jobs.claim("dead", 10.0)
    assert seen_a is not None and seen_b is not None
    jobs.heartbeat("dead", 11.0)  # it beat after we looked: our view is out of date
    assert not jobs.settle(seen_a, Settlement("interrupted", "gone"), 30.0)
    (fresh_a, fresh_b) = jobs.running()
    assert jobs.settle(fresh_a, Settlement("interrupted", "gone"), 30.0)
    assert jobs.settle(fresh_b, Settlement("queued", "again"), 30.0)
    a, b = jobs.get("a"), jobs.get("b")
    assert a is not None and (a.state, a.error, a.finished) == ("interrupted", "gone", 30.0)
    assert b is not None and (b.state, b.owner, b.message) == ("queued", None, "again")
    rerun = jobs.claim("runner-2", 31.0)
    assert rerun is not None and rerun.id == "b" and rerun.attempts == 2


def test_recent_jobs_come_newest_first_and_page_by_key(jobs: JobStore) -> None:
    for n in range(5):
        jobs.insert(new(f"j{n}"))
    first = jobs.recent(limit=2)
    assert [j.id for j in first] == ["j4", "j3"]
    assert [j.id for j in jobs.recent(limit=2, before=first[-1].seq)] == ["j2", "j1"]


def test_pruning_deletes_only_jobs_that_ended_before_the_cut(jobs: JobStore) -> None:
    for name in ("old", "new", "running", "queued"):
        jobs.insert(new(name))
    for name in ("old", "new", "running"):
        claimed = jobs.claim("runner-1", 10.0)
        assert claimed is not None and claimed.id == name
    jobs.finish("old", "runner-1", "succeeded", "", None, None, 100.0)
    jobs.finish("new", "runner-1", "failed", "", None, "x", 300.0)
    assert jobs.prune(200.0) == 1
    assert jobs.get("old") is None
    assert {j.id for j in jobs.recent()} == {"new", "running", "queued"}
