"""Named SQL of the automations tables (migrations 2, 6 and 7), each with the invariant it keeps."""

from __future__ import annotations

# Trigger state is written as whole entries (a bucket, a compound's partial state), so the newest
# snapshot always covers every earlier change to it.
#
# The checkpointed state is ``automation_state`` overlaid with the staged rows of the current checkpoint
# (``automation_checkpoint.current``): a staged row replaces the entry with its key, a staged NULL removes it.
# Rows staged for any other checkpoint (one being written, or one abandoned by a crash) are ignored. Folding
# moves a chunk of the current checkpoint's rows into ``automation_state`` and deletes them from staging in one
# transaction, which leaves the overlaid view unchanged.
_CURRENT = "(SELECT current FROM automation_checkpoint WHERE one = 1)"
_OVERLAID = (
    """
SELECT s.automation, s.path, s.bkey, s.state FROM automation_state AS s
WHERE NOT EXISTS (SELECT 1 FROM automation_staged AS g WHERE g.ckpt = """
    + _CURRENT
    + """
                  AND g.automation = s.automation AND g.path = s.path AND g.bkey = s.bkey)
UNION ALL
SELECT automation, path, bkey, state FROM automation_staged WHERE ckpt = """
    + _CURRENT
    + """ AND state IS NOT NULL
"""
)
LOAD_STATE = "SELECT automation, path, bkey, state FROM (" + _OVERLAID + ")"
STATE_OF = "SELECT path, bkey, state FROM (" + _OVERLAID + ") WHERE automation = ? ORDER BY path, bkey"

# -- a checkpoint written in chunks ------------------------------------------------------------------------
# The current checkpoint and the journal position it covers: steps with seq <= upto are in its rows.
CHECKPOINT = "SELECT current, upto FROM automation_checkpoint WHERE one = 1"
# A new checkpoint's number is above every number used: no row left by an abandoned write is taken for its own.
NEXT_CHECKPOINT = """
SELECT max((SELECT current FROM automation_checkpoint WHERE one = 1),
           coalesce((SELECT max(ckpt) FROM automation_staged), 0)) + 1
"""
# The journal position a checkpoint taken now covers: every step committed so far.
JOURNAL_END = "SELECT coalesce(max(seq), 0) FROM automation_journal"
STAGE = "INSERT OR REPLACE INTO automation_staged (ckpt, automation, path, bkey, state) VALUES (?, ?, ?, ?, ?)"
# The one small write that makes a fully staged checkpoint current. Before it, readers see the previous
# checkpoint and every journal step after its position; after it, the new rows and the steps after ``upto``.
FLIP = "UPDATE automation_checkpoint SET current = ?, upto = ? WHERE one = 1"
# Rows staged for checkpoints that are neither current nor being written (a crash cut their write short).
ABANDONED_CHUNK = """
DELETE FROM automation_staged WHERE (ckpt, automation, path, bkey) IN (
    SELECT ckpt, automation, path, bkey FROM automation_staged WHERE ckpt NOT IN (?, ?) LIMIT ?)
"""
# Folding a chunk of the current checkpoint into automation_state: the chunk is the staged rows up to the
# key ``FOLD_BOUND`` returns (the rows before it were folded already), written, then deleted from staging.
FOLD_BOUND = """
SELECT automation, path, bkey FROM automation_staged WHERE ckpt = ?
ORDER BY automation, path, bkey LIMIT 1 OFFSET ?
"""
FOLD_LAST = """
SELECT automation, path, bkey FROM automation_staged WHERE ckpt = ?
ORDER BY automation DESC, path DESC, bkey DESC LIMIT 1
"""
FOLD_UPSERT = """
INSERT INTO automation_state (automation, path, bkey, state, updated)
SELECT automation, path, bkey, state, ? FROM automation_staged
WHERE ckpt = ? AND state IS NOT NULL AND (automation, path, bkey) <= (?, ?, ?)
ON CONFLICT (automation, path, bkey) DO UPDATE SET state = excluded.state, updated = excluded.updated
"""
FOLD_DELETE = """
DELETE FROM automation_state WHERE (automation, path, bkey) IN (
    SELECT automation, path, bkey FROM automation_staged
    WHERE ckpt = ? AND state IS NULL AND (automation, path, bkey) <= (?, ?, ?))
"""
FOLD_UNSTAGE = "DELETE FROM automation_staged WHERE ckpt = ? AND (automation, path, bkey) <= (?, ?, ?)"

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

# The journal: evaluation steps (events and sweeps, in order). The state is the current checkpoint's entries
# plus the steps after its position (``upto``) replayed; the flip that makes a checkpoint current moves
# ``upto`` in the same transaction, so each step's effect is counted exactly once.
INSERT_STEP = "INSERT INTO automation_journal (event_id, at, low) VALUES (?, ?, ?)"
LOAD_JOURNAL = """
SELECT event_id, at, low FROM automation_journal
WHERE seq > (SELECT upto FROM automation_checkpoint WHERE one = 1) ORDER BY seq
"""
# Steps the current checkpoint covers, a chunk at a time. The step at ``upto`` itself is kept: SQLite numbers
# a new row after the largest seq in the table, so while it stays no later step can get a seq <= upto.
PRUNE_JOURNAL_CHUNK = """
DELETE FROM automation_journal WHERE seq < ? AND seq < (SELECT min(seq) FROM automation_journal) + ?
"""
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
