"""Every SQL statement of the embedded store, named, with the invariant it keeps written above it."""

from __future__ import annotations

# An event is stored once per (source, source_id): a second append of the same upstream record
# returns no id, which is how sources and webhooks dedupe.
INSERT_EVENT = """
INSERT INTO events (source, source_id, type, key, entity_type, entity_id, project_id, occurred, received, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, source_id) DO NOTHING
RETURNING id
"""


# A source's cursor is written in the same transaction as the events it covers.
UPSERT_CURSOR = """
INSERT INTO source_cursors (source, cursor, updated) VALUES (?, ?, ?)
ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated = excluded.updated
"""

GET_CURSOR = "SELECT cursor FROM source_cursors WHERE source = ?"
LIST_CURSORS = "SELECT source, cursor, updated FROM source_cursors ORDER BY source"

# Reads walk the primary key: ids only grow, and a single writer commits them in order.
READ_AFTER = "SELECT id, type, key, body FROM events WHERE id > ? ORDER BY id LIMIT ?"
READ_AFTER_TYPE = "SELECT id, type, key, body FROM events WHERE type = ? AND id > ? ORDER BY id LIMIT ?"
GET_EVENT = "SELECT body FROM events WHERE id = ?"
GET_RECORD = "SELECT id, type, key, body FROM events WHERE id = ?"
LAST_ID = "SELECT coalesce(max(id), 0) FROM events"
FIRST_ID = "SELECT coalesce(min(id), 0) FROM events"
COUNT_EVENTS = "SELECT count(*) FROM events"

# A new group starts where it is told (by default the current end of the log); an existing group
# keeps its position.
INSERT_GROUP = """
INSERT INTO groups (name, position, updated) VALUES (?, ?, ?)
ON CONFLICT (name) DO NOTHING
"""
GET_GROUP = "SELECT name, position, state, reason, generation, updated FROM groups WHERE name = ?"
LIST_GROUPS = "SELECT name, position, state, reason, generation, updated FROM groups ORDER BY name"
SET_GROUP_STATE = "UPDATE groups SET state = ?, reason = ?, updated = ? WHERE name = ?"
SET_GROUP_POSITION = "UPDATE groups SET position = max(position, ?), updated = ? WHERE name = ?"
# Bumping the generation tells a running daemon that rows were queued from outside (replay).
BUMP_GENERATION = "UPDATE groups SET generation = generation + 1, updated = ? WHERE name = ?"

LOAD_ROWS = """
SELECT event_id, key, state, attempts, retry_at, consumers, error, traceback
FROM deliveries WHERE grp = ? ORDER BY event_id
"""
UPSERT_ROW = """
INSERT INTO deliveries (grp, event_id, key, state, attempts, retry_at, consumers, error, traceback, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (grp, event_id) DO UPDATE SET
    key = excluded.key, state = excluded.state, attempts = excluded.attempts,
    retry_at = excluded.retry_at, consumers = excluded.consumers, error = excluded.error,
    traceback = excluded.traceback, updated = excluded.updated
"""
DELETE_ROW = "DELETE FROM deliveries WHERE grp = ? AND event_id = ?"

# Dead letters page by key (group, event id), never by offset.
DEAD_ALL = """
SELECT grp, event_id, key, state, attempts, retry_at, consumers, error, traceback
FROM deliveries WHERE state = 'dead' AND (grp, event_id) > (?, ?)
ORDER BY grp, event_id LIMIT ?
"""
DEAD_OF_GROUP = """
SELECT grp, event_id, key, state, attempts, retry_at, consumers, error, traceback
FROM deliveries WHERE state = 'dead' AND grp = ? AND event_id > ?
ORDER BY event_id LIMIT ?
"""
COUNT_BY_STATE = "SELECT grp, state, count(*) FROM deliveries GROUP BY grp, state"

# Replaying a dead letter makes it pending with a fresh attempt count; the error stays for the record.
REQUEUE_DEAD_ONE = """
UPDATE deliveries SET state = 'pending', attempts = 0, retry_at = NULL, updated = ?
WHERE grp = ? AND event_id = ? AND state = 'dead'
"""
REQUEUE_DEAD_ALL = """
UPDATE deliveries SET state = 'pending', attempts = 0, retry_at = NULL, updated = ?
WHERE grp = ? AND state = 'dead'
"""
DISCARD_DEAD_ONE = "DELETE FROM deliveries WHERE grp = ? AND event_id = ? AND state = 'dead'"
DISCARD_DEAD_ALL = "DELETE FROM deliveries WHERE grp = ? AND state = 'dead'"

# A replayed range never clobbers a delivery that is already unfinished or dead.
REPLAY_RANGE = """
INSERT INTO deliveries (grp, event_id, key, state, attempts, consumers, updated)
SELECT ?, id, key, 'pending', 0, ?, ? FROM events WHERE id BETWEEN ? AND ?
ON CONFLICT (grp, event_id) DO NOTHING
"""
