"""The job rules as plain decisions: when a running job is stale, what becomes of it, when it is overdue."""

from __future__ import annotations

import math

import pytest

from trackwire.core.jobs import MAX_RERUNS, Job, clamp, overdue, settle_stale


def job(**fields: object) -> Job:
    base: dict[str, object] = {
        "id": "j1",
        "key": "k",
        "action": "loco.sync",
        "tracker": "shotgrid",
        "invocation": {"user": {"login": "jane"}},
        "background": True,
        "state": "running",
        "owner": "host:1:a",
        "started": 100.0,
        "beat": 100.0,
        "attempts": 1,
        "timeout": 60.0,
    }
    return Job(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "now", "expected"),
    [
        ({}, 114.9, None),  # within 3 beats of 5 s: its owner is alive
        ({}, 115.1, "interrupted"),  # 3 beats missed: its process died; run at most once
        ({"rerun": True}, 115.1, "queued"),  # safe to repeat: queued again
        ({"rerun": True, "attempts": MAX_RERUNS}, 115.1, "interrupted"),  # but not forever
        ({"beat": None}, 115.1, "interrupted"),  # never beat: its start time counts
        ({"state": "queued"}, 1000.0, None),  # only running jobs go stale
        ({"state": "succeeded"}, 1000.0, None),
    ],
)
def test_a_running_job_whose_owner_stopped_beating_is_settled_by_the_documented_rule(
    fields: dict[str, object], now: float, expected: str | None
) -> None:
    settlement = settle_stale(job(**fields), now, heartbeat=5.0)
    assert (settlement.state if settlement else None) == expected


def test_the_reason_of_an_interruption_says_it_was_not_run_again() -> None:
    settlement = settle_stale(job(), math.inf, heartbeat=5.0)
    assert settlement is not None
    assert "process stopped" in settlement.message and "not run again" in settlement.message


def test_a_job_is_overdue_only_while_running_past_its_timeout() -> None:
    assert not overdue(job(), 160.0)
    assert overdue(job(), 160.1)
    assert not overdue(job(state="succeeded"), 1000.0)
    assert not overdue(job(state="queued", started=None), 1000.0)


def test_progress_is_clamped_to_zero_to_one() -> None:
    assert [clamp(x) for x in (-1.0, 0.25, 1.5, float("nan"))] == [0.0, 0.25, 1.0, 0.0]


def test_a_job_knows_its_duration_and_user() -> None:
    finished = job(state="succeeded", finished=102.5)
    assert finished.duration == 2.5 and finished.done and finished.user == "jane"
    assert job().duration is None and not job().done
