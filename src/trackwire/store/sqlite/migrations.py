"""Schema migrations of the embedded store, applied in order; ``PRAGMA user_version`` records the last.

Never edit a released migration: add a new one. ``tests/integration/test_sqlite_migrations.py``
upgrades a database made by the first migration with data in it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from trackwire.errors import MigrationError

__all__ = ["MIGRATIONS", "migrate", "use_wal"]

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "event log, source cursors, groups and deliveries",
        """
        CREATE TABLE events (
            id          INTEGER PRIMARY KEY,
            source      TEXT NOT NULL,
            source_id   TEXT NOT NULL,
            type        TEXT NOT NULL,
            key         TEXT NOT NULL,
            entity_type TEXT,
            entity_id   TEXT,
            project_id  TEXT,
            occurred    TEXT NOT NULL,
            received    TEXT NOT NULL,
            body        TEXT NOT NULL,
            UNIQUE (source, source_id)
        );
        CREATE INDEX events_by_type ON events (type, id);
        CREATE INDEX events_by_key ON events (key, id);
        CREATE INDEX events_by_project ON events (project_id, id);

        CREATE TABLE source_cursors (
            source  TEXT PRIMARY KEY,
            cursor  TEXT NOT NULL,
            updated TEXT NOT NULL
        );

        CREATE TABLE groups (
            name       TEXT PRIMARY KEY,
            position   INTEGER NOT NULL,
            state      TEXT NOT NULL DEFAULT 'active',
            reason     TEXT,
            generation INTEGER NOT NULL DEFAULT 0,
            updated    TEXT NOT NULL
        );

        CREATE TABLE deliveries (
            grp       TEXT NOT NULL,
            event_id  INTEGER NOT NULL,
            key       TEXT NOT NULL,
            state     TEXT NOT NULL CHECK (state IN ('pending', 'running', 'retry', 'dead')),
            attempts  INTEGER NOT NULL DEFAULT 0,
            retry_at  REAL,
            consumers TEXT NOT NULL DEFAULT '[]',
            error     TEXT,
            traceback TEXT,
            updated   TEXT NOT NULL,
            PRIMARY KEY (grp, event_id)
        ) WITHOUT ROWID;
        CREATE INDEX deliveries_by_state ON deliveries (state, grp, event_id);
        """,
    ),
    (
        2,
        "automations: trigger state (buckets, partial compound state), firings with action outcomes",
        """
        CREATE TABLE IF NOT EXISTS automation_state (
            automation TEXT NOT NULL,
            path       TEXT NOT NULL,
            bkey       TEXT NOT NULL,
            state      TEXT NOT NULL,
            updated    TEXT NOT NULL,
            PRIMARY KEY (automation, path, bkey)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS automation_firings (
            id         TEXT PRIMARY KEY,
            automation TEXT NOT NULL,
            path       TEXT NOT NULL,
            bkey       TEXT NOT NULL,
            fired_at   REAL NOT NULL,
            reason     TEXT NOT NULL,
            events     TEXT NOT NULL,
            win_start  REAL NOT NULL,
            win_end    REAL NOT NULL,
            triggering INTEGER,
            status     TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
            outcomes   TEXT NOT NULL DEFAULT '[]',
            created    TEXT NOT NULL,
            updated    TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS automation_firings_by_status ON automation_firings (status, created);
        CREATE INDEX IF NOT EXISTS automation_firings_by_automation ON automation_firings (automation, created);
        CREATE TABLE IF NOT EXISTS automation_applied (
            event_id INTEGER PRIMARY KEY
        )
        """,
    ),
    (
        3,
        "workflow runs (a projection of the trackwire.workflow.* events in the log)",
        """
        CREATE TABLE IF NOT EXISTS workflow_runs (
            run_id     TEXT PRIMARY KEY,
            flow       TEXT NOT NULL,
            origin     TEXT NOT NULL,
            mode       TEXT NOT NULL,
            status     TEXT NOT NULL,
            recovers   TEXT,
            definition TEXT NOT NULL,
            triggers   TEXT NOT NULL DEFAULT '[]',
            reason     TEXT,
            created    TEXT NOT NULL,
            updated    TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS workflow_runs_by_status ON workflow_runs (status, created);
        CREATE INDEX IF NOT EXISTS workflow_runs_by_flow ON workflow_runs (flow, created);
        CREATE INDEX IF NOT EXISTS workflow_runs_by_origin ON workflow_runs (origin, created)
        """,
    ),
    (
        4,
        "indexes for browsing the log: by source and by entity, newest first",
        """
        CREATE INDEX IF NOT EXISTS events_by_source ON events (source, id);
        CREATE INDEX IF NOT EXISTS events_by_entity ON events (entity_type, entity_id, id);
        """,
    ),
    (
        5,
        "hosted-action jobs: every invocation, its state, progress, owner and heartbeat",
        """
        CREATE TABLE IF NOT EXISTS action_jobs (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            id         TEXT NOT NULL UNIQUE,
            key        TEXT NOT NULL,
            action     TEXT NOT NULL,
            tracker    TEXT NOT NULL,
            invocation TEXT NOT NULL,
            background INTEGER NOT NULL,
            state      TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'interrupted')),
            progress   REAL NOT NULL DEFAULT 0,
            message    TEXT NOT NULL DEFAULT '',
            result     TEXT,
            error      TEXT,
            attempts   INTEGER NOT NULL DEFAULT 0,
            rerun      INTEGER NOT NULL DEFAULT 0,
            timeout    REAL NOT NULL,
            owner      TEXT,
            beat       REAL,
            created    REAL NOT NULL,
            started    REAL,
            finished   REAL
        );
        CREATE INDEX IF NOT EXISTS action_jobs_by_state ON action_jobs (state, seq)
        """,
    ),
    (
        6,
        "automations: the journal of evaluation steps since the last state checkpoint",
        """
        CREATE TABLE IF NOT EXISTS automation_journal (
            seq      INTEGER PRIMARY KEY,
            event_id INTEGER,
            at       REAL NOT NULL,
            low      INTEGER NOT NULL DEFAULT 0
        )
        """,
    ),
    (
        7,
        "automations: checkpoints written in chunks to a staging table and made current by one small write",
        """
        CREATE TABLE IF NOT EXISTS automation_checkpoint (
            one     INTEGER PRIMARY KEY CHECK (one = 1),
            current INTEGER NOT NULL,
            upto    INTEGER NOT NULL
        );
        INSERT INTO automation_checkpoint (one, current, upto) VALUES (1, 0, 0) ON CONFLICT (one) DO NOTHING;
        CREATE TABLE IF NOT EXISTS automation_staged (
            ckpt       INTEGER NOT NULL,
            automation TEXT NOT NULL,
            path       TEXT NOT NULL,
            bkey       TEXT NOT NULL,
            state      TEXT,
            PRIMARY KEY (ckpt, automation, path, bkey)
        ) WITHOUT ROWID
        """,
    ),
)

LATEST = max(number for number, _, _ in MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Bring the schema up to date (or up to ``target``) in one transaction per migration.

    Returns the final version. A store whose version is newer than this Trackwire knows is refused.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > LATEST:
        raise MigrationError(
            f"this store has schema version {version}, newer than this Trackwire knows ({LATEST}); upgrade Trackwire"
        )
    for number, description, script in sorted(MIGRATIONS):
        if number <= version:
            continue
        if target is not None and number > target:
            break
        try:
            conn.execute("BEGIN IMMEDIATE")
            # Another process may have migrated while we waited for the write lock: read the version again.
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current >= number:
                conn.execute("COMMIT")
                version = current
                continue
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(number)}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationError(f"migration {number} ({description}) failed: {exc}") from exc
        version = number
    return version


def use_wal(conn: sqlite3.Connection, *, timeout: float = 30.0) -> None:
    """Put the database in WAL mode, waiting out other processes that open it at the same moment.

    Switching the journal mode of a fresh file can answer "database is locked" at once, without going through
    the busy timeout, while another connection is doing the same switch (two processes starting on one new
    store: the daemon and a CLI command). That is retried here until ``timeout``; any other error is raised.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if ("locked" not in message and "busy" not in message) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"the database stayed in journal mode {mode!r} instead of WAL")
        return


def open_migrated(path: str | Path) -> sqlite3.Connection:
    """A connection for a store's side tables (jobs, workflow runs, automation state): autocommit, shared
    across threads behind the caller's lock, durable commits, migrated to the newest schema."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=FULL")
    migrate(conn)
    return conn
