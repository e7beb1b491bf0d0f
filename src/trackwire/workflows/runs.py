"""Runs as the log holds them: records to events and back, and the read API (CLI, dashboard).

A run's records are events of type ``trackwire.workflow.<kind>`` with ordering key
``workflow:<run id>`` and dedupe key ``(trackwire.workflow, <run id>#<n>)``, so a record written twice
is stored once. :func:`run_view` rebuilds a run's state (each step's status, timing, output) from
them and the definition stored with the run.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackwire.core.event import Event
from trackwire.core.workflows.state import Record, Run, apply
from trackwire.store.sqlite.workflow_runs import RunRow, SqliteWorkflowRuns
from trackwire.workflows.definition import flow_from_json

__all__ = [
    "PREFIX",
    "SOURCE",
    "definition_version",
    "event_of",
    "list_runs",
    "load_run",
    "open_runs",
    "record_of",
    "run_key",
    "run_view",
]

SOURCE = "trackwire.workflow"
PREFIX = "trackwire.workflow."


def definition_version(definition: dict[str, Any]) -> str:
    """A short digest of a flow's JSON definition: runs started from the same definition share it."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_key(run_id: str) -> str:
    return f"workflow:{run_id}"


def event_of(record: Record, flow: str, number: int) -> Event:
    return Event(
        source=SOURCE,
        source_id=f"{record.run_id}#{number}",
        type=PREFIX + record.kind,
        occurred=datetime.fromtimestamp(record.at, UTC),
        data={"run": record.run_id, "flow": flow, "at": record.at, **record.data},
        key=run_key(record.run_id),
    )


def record_of(event: Event) -> Record | None:
    if not event.type.startswith(PREFIX) or event.source != SOURCE:
        return None
    data = dict(event.data)
    run_id = str(data.pop("run"))
    data.pop("flow", None)
    at = float(data.pop("at", event.occurred.timestamp()))
    return Record(run_id, event.type.removeprefix(PREFIX), data, at)


def open_runs(store_url: str) -> SqliteWorkflowRuns:
    if not store_url.startswith("sqlite:///"):
        raise ValueError(f"workflows need the SQLite store for now, not {store_url!r}")
    return SqliteWorkflowRuns(Path(store_url.removeprefix("sqlite:///")))


def records_of(runs: SqliteWorkflowRuns, run_id: str) -> list[Record]:
    out = []
    for stored in runs.records(run_key(run_id)):
        record = record_of(stored.event)
        if record is not None:
            out.append(record)
    return out


def load_run(runs: SqliteWorkflowRuns, row: RunRow) -> Run:
    """The run's state rebuilt from its records and the definition it started with."""
    run = Run(row.run_id, flow_from_json(row.definition))
    for record in records_of(runs, row.run_id):
        apply(run, record)
    return run


def list_runs(
    runs: SqliteWorkflowRuns, *, flow: str | None = None, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    rows = runs.runs(flow=flow, status=status, limit=limit, newest_first=True)
    return [r.to_json() | {"version": definition_version(r.definition)} for r in rows]


def run_view(runs: SqliteWorkflowRuns, run_id: str) -> dict[str, Any] | None:
    """Everything a dashboard needs to draw a run: the graph, and each step's state, timing and output."""
    row = runs.get(run_id)
    if row is None:
        return None
    run = load_run(runs, row)
    state = run.to_json()
    return {
        **row.to_json(),
        "version": definition_version(row.definition),
        "status": run.status if run.status != "running" else row.status,
        "graph": {
            "events": {name: expr for name, expr in row.definition.get("events", {}).items()},
            "steps": {
                s["name"]: {"triggers": s.get("triggers", {}), "acquires": s.get("acquires", [])}
                for s in row.definition.get("steps", [])
            },
            "assocs": [
                {"event": a[0], "target": a[1], "kind": a[2], "delay": a[3]} for a in row.definition.get("assocs", [])
            ],
        },
        "sequences": state["sequences"],
        "timers": state["timers"],
        "stopping": state["stopping"],
        "unhandled": state["unhandled"],
    }
