"""The SQL of hosted-action jobs (migration 5), named, with the invariant each keeps written above it."""

from __future__ import annotations

COLUMNS = (
    "seq, id, key, action, tracker, invocation, background, state, progress, message, result, error, attempts, "
    "rerun, timeout, owner, beat, created, started, finished"
)

INSERT_JOB = """
INSERT INTO action_jobs (id, key, action, tracker, invocation, background, state, progress, message, result, error,
                         attempts, rerun, timeout, owner, beat, created, started, finished)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING seq
"""

GET_JOB = "SELECT " + COLUMNS + " FROM action_jobs WHERE id = ?"

# One statement, so two runners never claim the same job: the row changes only while it is still queued.
CLAIM_OLDEST = (
    "UPDATE action_jobs SET state = 'running', owner = ?, started = ?, beat = ?, attempts = attempts + 1 "
    "WHERE seq = (SELECT seq FROM action_jobs WHERE state = 'queued' ORDER BY seq LIMIT 1) AND state = 'queued' "
    "RETURNING " + COLUMNS
)

# Progress and the end are written only by the runner that owns the running job: a job that timed out
# or was settled as stale is no longer its, and the runner learns it from the row count.
REPORT = "UPDATE action_jobs SET progress = ?, message = ?, beat = ? WHERE id = ? AND owner = ? AND state = 'running'"
FINISH = """
UPDATE action_jobs SET state = ?, message = ?, result = ?, error = ?, finished = ?,
       progress = CASE WHEN ? = 'succeeded' THEN 1.0 ELSE progress END
WHERE id = ? AND owner = ? AND state = 'running'
"""
HEARTBEAT = "UPDATE action_jobs SET beat = ? WHERE owner = ? AND state = 'running'"

RUNNING = "SELECT " + COLUMNS + " FROM action_jobs WHERE state = 'running' ORDER BY seq"

# A stale job is settled only if nobody touched it since it was seen stale (same owner, same heartbeat).
REQUEUE_STALE = """
UPDATE action_jobs SET state = 'queued', owner = NULL, beat = NULL, message = ?
WHERE id = ? AND state = 'running' AND owner IS ? AND beat IS ?
"""
INTERRUPT_STALE = """
UPDATE action_jobs SET state = 'interrupted', message = ?, error = ?, finished = ?
WHERE id = ? AND state = 'running' AND owner IS ? AND beat IS ?
"""

RECENT = "SELECT " + COLUMNS + " FROM action_jobs ORDER BY seq DESC LIMIT ?"
RECENT_BEFORE = "SELECT " + COLUMNS + " FROM action_jobs WHERE seq < ? ORDER BY seq DESC LIMIT ?"

# Only ended jobs go: a queued or running job is never pruned, however old.
PRUNE = "DELETE FROM action_jobs WHERE state IN ('succeeded', 'failed', 'interrupted') AND finished < ?"
