"""Every SQL statement of the embedded store, named, with the invariant it keeps written above it."""

from __future__ import annotations

# An event is stored once per (source, source_id): a second append of the same upstream record
# gets no id, which is how sources and webhooks dedupe. A batch is inserted with one executemany;
# the ids it was given are then read back (everything above the largest id before it, taken under
# the write transaction, so only this batch).
INSERT_EVENT = """
INSERT INTO events (source, source_id, type, key, entity_type, entity_id, project_id, occurred, received, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (source, source_id) DO NOTHING
"""
IDS_AFTER = "SELECT id, source, source_id FROM events WHERE id > ? ORDER BY id"


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


# -- browsing (dashboard and JSON API) -------------------------------------------------------------
# Event search pages newest first by key (``id < :before``), never by OFFSET, so page 1000 costs what
# page 1 costs. One query per driving index (migration 4 adds by-source and by-entity); the other
# filters are residual conditions. ``:low``/``:before`` bound the id range (a time range becomes one).
_SEARCH_RESIDUAL = """
    AND id < :before AND id >= :low
    AND (:source IS NULL OR source = :source)
    AND (:type IS NULL OR type = :type)
    AND (:etype IS NULL OR entity_type = :etype)
    AND (:eid IS NULL OR entity_id = :eid)
    AND (:project IS NULL OR project_id = :project)
ORDER BY id DESC LIMIT :limit
"""
SEARCH_EVENTS = "SELECT id, received, body FROM events WHERE 1 = 1" + _SEARCH_RESIDUAL
SEARCH_EVENTS_BY_ENTITY = (
    "SELECT id, received, body FROM events INDEXED BY events_by_entity WHERE entity_type = :etype AND entity_id = :eid"
    + _SEARCH_RESIDUAL
)
SEARCH_EVENTS_BY_PROJECT = (
    "SELECT id, received, body FROM events INDEXED BY events_by_project WHERE project_id = :project" + _SEARCH_RESIDUAL
)
SEARCH_EVENTS_BY_TYPE = (
    "SELECT id, received, body FROM events INDEXED BY events_by_type WHERE type = :type" + _SEARCH_RESIDUAL
)
SEARCH_EVENTS_BY_SOURCE = (
    "SELECT id, received, body FROM events INDEXED BY events_by_source WHERE source = :source" + _SEARCH_RESIDUAL
)

# ``received`` grows with ``id`` (one writer stamps each transaction), so a time bound becomes an id
# bound by a binary search over the primary key: no index on time needed.
RECEIVED_AT_OR_AFTER_ID = "SELECT id, received FROM events WHERE id >= ? ORDER BY id LIMIT 1"
EVENTS_PER_SOURCE_SINCE = "SELECT source, count(*) FROM events WHERE id > ? AND id <= ? GROUP BY source"
# Distinct values by skipping through an index (one seek per value), not by scanning every row.
DISTINCT_SOURCES = """
WITH RECURSIVE s(v) AS (
    SELECT min(source) FROM events
    UNION ALL
    SELECT (SELECT min(source) FROM events WHERE source > s.v) FROM s WHERE s.v IS NOT NULL
)
SELECT v FROM s WHERE v IS NOT NULL LIMIT ?
"""
DISTINCT_TYPES = """
WITH RECURSIVE s(v) AS (
    SELECT min(type) FROM events
    UNION ALL
    SELECT (SELECT min(type) FROM events WHERE type > s.v) FROM s WHERE s.v IS NOT NULL
)
SELECT v FROM s WHERE v IS NOT NULL LIMIT ?
"""

GET_DELIVERY = """
SELECT event_id, key, state, attempts, retry_at, consumers, error, traceback, updated
FROM deliveries WHERE grp = ? AND event_id = ?
"""
# A group's unfinished and dead deliveries, paged by event id.
ROWS_OF_GROUP = """
SELECT event_id, key, state, attempts, retry_at, consumers, error, traceback, updated
FROM deliveries WHERE grp = ? AND event_id > ? ORDER BY event_id LIMIT ?
"""
LAST_ERROR_OF_GROUP = """
SELECT event_id, key, state, attempts, retry_at, consumers, error, traceback, updated
FROM deliveries WHERE grp = ? AND error IS NOT NULL ORDER BY updated DESC LIMIT 1
"""
# Failures (retrying or dead) touched since a time, newest first.
RECENT_FAILURES = """
SELECT grp, event_id, key, state, attempts, retry_at, consumers, error, traceback, updated
FROM deliveries WHERE state IN ('retry', 'dead') AND updated >= ? ORDER BY updated DESC LIMIT ?
"""
COUNT_RECENT_FAILURES = "SELECT count(*) FROM deliveries WHERE state IN ('retry', 'dead') AND updated >= ?"

# The settings the store relies on (WAL, synchronous=FULL), read back for checks and `trackwire status`.
PRAGMA_READS = {
    "journal_mode": "PRAGMA journal_mode",
    "synchronous": "PRAGMA synchronous",
    "busy_timeout": "PRAGMA busy_timeout",
    "user_version": "PRAGMA user_version",
}
