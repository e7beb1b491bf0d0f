"""An ftrack launch of a long action: queued from the plugin's process, answered at once with the job's page,
and run by the daemon's job runner on the same store."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import wait_for
from trackwire.actions.hosted import Action, Invocation, Outcome, from_ftrack, ftrack_reply
from trackwire.actions.jobs import JobQueue, JobRunner
from trackwire.store.sqlite import SqliteStore
from trackwire.store.sqlite.jobs import SqliteJobs


def _sync(inv: Invocation) -> Outcome:
    inv.progress(0.5, "half way")
    return Outcome(True, f"synced {inv.selected[0]} for {inv.user_login}")


SYNC = Action("loco.client-review-sync", "Client Review Sync", _sync, entity_types=("ReviewSession",), background=True)
LAUNCH = {
    "id": "3f1c0a5e9b7d4c21a0e6f8b2d4c6e8a0",
    "topic": "ftrack.action.launch",
    "source": {"id": "web-1", "user": {"id": "u-7", "username": "jane@locovfx.com"}},
    "data": {"actionIdentifier": SYNC.identifier, "selection": [{"entityId": "rs-12", "entityType": "ReviewSession"}]},
}


def test_an_ftrack_launch_of_a_long_action_is_answered_at_once_and_run_by_the_daemons_runner(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tw.db")
    jobs = SqliteJobs(tmp_path / "tw.db")
    queue = JobQueue(f"sqlite:///{tmp_path / 'tw.db'}", "https://trackwire.example.com/")
    try:
        reply = ftrack_reply(SYNC, from_ftrack(LAUNCH), queue)  # in the ftrack plugin's worker process
        assert reply["success"] is True
        assert reply["message"].startswith(
            "Client Review Sync started in the background; its progress: https://trackwire.example.com/actions/jobs/"
        )
        (queued,) = jobs.recent()
        assert queued.state == "queued" and queued.tracker == "ftrack" and queued.user == "jane@locovfx.com"

        runner = JobRunner(jobs, lambda: {SYNC.identifier: SYNC}, lambda e: store.append([e]), heartbeat=0.2)
        runner.start()  # the daemon's runner, serving the web app on the same store
        try:
            wait_for(lambda: (j := jobs.get(queued.id)) is not None and j.done, timeout=10, what="the job to run")
        finally:
            runner.stop(grace=1.0)
        done = jobs.get(queued.id)
        assert done is not None and done.state == "succeeded"
        assert done.result is not None and done.result["message"] == "synced rs-12 for jane@locovfx.com"
        (event,) = [r.event for r in store.read_after(0, 10)]
        assert event.type == "trackwire.action.invoked" and event.data["tracker"] == "ftrack"
    finally:
        queue.close()
        jobs.close()
        store.close()
