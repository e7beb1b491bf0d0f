"""The SQL of workflow runs (migration 3), named, with the invariant each keeps written above it."""

from __future__ import annotations

# A run's row is written before its first record is appended, so a crash in between leaves a
# 'running' row with no records, which recovery starts from its stored triggers.
INSERT_RUN = """
INSERT INTO workflow_runs (run_id, flow, origin, mode, status, recovers, definition, triggers, created, updated)
VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO NOTHING
"""

# The status follows the run's last run.finished / run.resumed record.
SET_RUN_STATUS = "UPDATE workflow_runs SET status = ?, reason = ?, updated = ? WHERE run_id = ?"

GET_RUN = """
SELECT run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated
FROM workflow_runs WHERE run_id = ?
"""
LIST_RUNS = """
SELECT run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated
FROM workflow_runs ORDER BY created DESC, run_id DESC LIMIT ?
"""
LIST_RUNS_OF_FLOW = """
SELECT run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated
FROM workflow_runs WHERE flow = ? ORDER BY created DESC, run_id DESC LIMIT ?
"""
LIST_RUNS_BY_STATUS = """
SELECT run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated
FROM workflow_runs WHERE status = ? ORDER BY created, run_id LIMIT ?
"""
# The dashboard's list: newest first.
LIST_RUNS_BY_STATUS_NEWEST = """
SELECT run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated
FROM workflow_runs WHERE status = ? ORDER BY created DESC, run_id DESC LIMIT ?
"""
LIST_RUNS_OF_FLOW_BY_STATUS = """
SELECT run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated
FROM workflow_runs WHERE flow = ? AND status = ? ORDER BY created DESC, run_id DESC LIMIT ?
"""
# The newest run of a recovery chain (the first run and every recovery share an origin).
LATEST_OF_ORIGIN = """
SELECT run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated
FROM workflow_runs WHERE origin = ? ORDER BY created DESC, rowid DESC LIMIT 1
"""
LATEST_OF_FLOW = """
SELECT run_id, flow, origin, mode, status, recovers, definition, triggers, reason, created, updated
FROM workflow_runs WHERE flow = ? ORDER BY created DESC, rowid DESC LIMIT 1
"""
COUNT_OF_ORIGIN = "SELECT count(*) FROM workflow_runs WHERE origin = ?"

# A run's records are its events in the log, found through the (key, id) index.
RUN_RECORDS = "SELECT id, type, key, body FROM events WHERE key = ? ORDER BY id"
