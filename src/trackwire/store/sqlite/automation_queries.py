"""Named SQL of the automations tables (migration 2), each with the invariant it keeps."""

from __future__ import annotations

# Trigger state is written as whole entries (a bucket, a compound's partial state), so the newest
# snapshot always covers every earlier change to it.
LOAD_STATE = "SELECT automation, path, bkey, state FROM automation_state"
UPSERT_STATE = """
INSERT INTO automation_state (automation, path, bkey, state, updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (automation, path, bkey) DO UPDATE SET state = excluded.state, updated = excluded.updated
"""
DELETE_STATE = "DELETE FROM automation_state WHERE automation = ? AND path = ? AND bkey = ?"
STATE_OF = "SELECT path, bkey, state FROM automation_state WHERE automation = ? ORDER BY path, bkey"

# A firing's id is derived from what caused it, so re-evaluating an event after a crash inserts nothing.
INSERT_FIRING = """
INSERT INTO automation_firings
    (id, automation, path, bkey, fired_at, reason, events, win_start, win_end, triggering, status, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)
ON CONFLICT (id) DO NOTHING
"""
FIRING_COLUMNS = """
id, automation, path, bkey, fired_at, reason, events, win_start, win_end, triggering, status, outcomes, created, updated
"""
GET_FIRING = "SELECT " + FIRING_COLUMNS + " FROM automation_firings WHERE id = ?"
PENDING_FIRINGS = "SELECT " + FIRING_COLUMNS + " FROM automation_firings WHERE status = 'pending' ORDER BY created, id"
# Firings page newest first by (created, id), never by offset.
FIRINGS_OF = (
    """
SELECT """
    + FIRING_COLUMNS
    + """ FROM automation_firings WHERE automation = ?
ORDER BY created DESC, id DESC LIMIT ?
"""
)
RECENT_FIRINGS = "SELECT " + FIRING_COLUMNS + " FROM automation_firings ORDER BY created DESC, id DESC LIMIT ?"
COUNT_FIRINGS = "SELECT automation, status, count(*) FROM automation_firings GROUP BY automation, status"
SET_OUTCOMES = "UPDATE automation_firings SET status = ?, outcomes = ?, updated = ? WHERE id = ?"

# Events whose effect on the state is durable: a redelivery of one of them changes nothing.
INSERT_APPLIED = "INSERT INTO automation_applied (event_id) VALUES (?) ON CONFLICT (event_id) DO NOTHING"
LOAD_APPLIED = "SELECT event_id FROM automation_applied WHERE event_id > ?"
# Ids at or below the group's durable position are never delivered again.
PRUNE_APPLIED = "DELETE FROM automation_applied WHERE event_id <= ?"

# The journal: evaluation steps (events and sweeps, in order) since the last checkpoint of the state. The
# state is the checkpointed entries plus these steps replayed; a checkpoint writes the entries and empties
# the journal in one transaction, so each step's effect is counted exactly once.
INSERT_STEP = "INSERT INTO automation_journal (event_id, at, low) VALUES (?, ?, ?)"
LOAD_JOURNAL = "SELECT event_id, at, low FROM automation_journal ORDER BY seq"
CLEAR_JOURNAL = "DELETE FROM automation_journal"
# The firings of an automation that include any event id in a range (the events column is a JSON list).
FIRINGS_WITH_EVENTS = (
    "SELECT "
    + FIRING_COLUMNS
    + """ FROM automation_firings WHERE automation = ?
AND (triggering BETWEEN ? AND ?
     OR EXISTS (SELECT 1 FROM json_each(automation_firings.events) WHERE value BETWEEN ? AND ?))
ORDER BY fired_at, id
"""
)
