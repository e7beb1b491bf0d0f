"""``trackwire workflows``: list flows, show a flow or a run, list runs, start, retry, continue, cancel.

Changes are requests appended to the log (``trackwire.workflow.request.*``); the running daemon's
workflow service carries them out, so they are durable even when the daemon is busy or restarting.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trackwire.config import Settings, load_settings
from trackwire.errors import ConfigError, TrackwireError

__all__ = ["workflows_app"]

workflows_app = typer.Typer(help="Event-driven workflows: flows, runs, retry, cancel.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="configuration file (default: $TRACKWIRE_CONFIG or ./trackwire.toml)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


def _runs(settings: Settings) -> Any:
    from trackwire.workflows.runs import open_runs

    try:
        return open_runs(settings.store_url)
    except (ValueError, TrackwireError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


def _request(settings: Settings, kind: str, data: dict[str, Any]) -> int:
    from trackwire.store import open_store
    from trackwire.workflows.intake import request_event

    store = open_store(settings.store_url)
    try:
        (event_id,) = store.append([request_event(kind, data)]).new
    finally:
        store.close()
    return event_id


def _when(stamp: float | None) -> str:
    return "" if stamp is None else datetime.fromtimestamp(stamp, UTC).strftime("%H:%M:%S.%f")[:-3]


@workflows_app.command("list")
def list_flows(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The flows the configuration loads."""
    from trackwire.workflows.loading import load_flows

    settings = _settings(config)
    try:
        flows, pools = asyncio.run(load_flows(settings))
    except TrackwireError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    if as_json:
        from trackwire.workflows.definition import flow_to_json

        console.print_json(json.dumps({"flows": [flow_to_json(f) for f in flows.values()], "pools": pools}))
        return
    table = Table("flow", "events", "steps", "starts on", "max concurrent")
    for flow in flows.values():
        starts = ", ".join(t for s in flow.starts for t in s.get("types", ()))
        table.add_row(flow.name, str(len(flow.events)), str(len(flow.steps)), starts or "-", str(flow.max_concurrent))
    console.print(table)


@workflows_app.command("runs")
def list_runs(
    config: ConfigOption = None,
    flow: Annotated[str | None, typer.Option(help="only this flow's runs")] = None,
    status: Annotated[str | None, typer.Option(help="running, success, failure or cancelled")] = None,
    limit: int = 50,
    as_json: JsonOption = False,
) -> None:
    """Recent runs, newest first."""
    from trackwire.workflows.runs import list_runs as read_runs

    runs = _runs(_settings(config))
    try:
        rows = read_runs(runs, flow=flow, status=status, limit=limit)
    finally:
        runs.close()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("run", "flow", "version", "mode", "status", "started", "reason")
    for row in rows:
        table.add_row(row["run_id"], row["flow"], row["version"], row["mode"], row["status"], row["created"][:23],
                      row["reason"] or "")  # fmt: skip
    console.print(table)


@workflows_app.command("show")
def show(run_id: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """One run: each step's state, attempts, timing and output, and the timers still pending."""
    from trackwire.workflows.runs import run_view

    runs = _runs(_settings(config))
    try:
        view = run_view(runs, run_id)
    finally:
        runs.close()
    if view is None:
        err.print(f"[red]no run {run_id!r}[/red]")
        raise typer.Exit(1)
    if as_json:
        console.print_json(json.dumps(view, default=str))
        return
    console.print(
        f"[bold]{view['run_id']}[/bold] flow {view['flow']} (definition {view['version']}, {view['mode']}): "
        f"{view['status']}"
    )
    if view.get("reason") or view.get("stopping"):
        console.print(f"reason: {view.get('reason') or view.get('stopping')}")
    table = Table("sequence", "step", "status", "attempt", "started", "finished", "result / error")
    for seq, state in view["sequences"].items():
        for step, info in state["steps"].items():
            output = info["error"] if info["status"] == "failure" else json.dumps(info["result"])
            status = info["status"] + (" (skipped)" if info["skipped"] else "")
            table.add_row(seq, step, status, str(info["attempt"]), _when(info["started"]), _when(info["finished"]),
                          (output or "")[:80])  # fmt: skip
    console.print(table)
    for timer in view["timers"]:
        console.print(f"timer {timer['id']} due {_when(timer['due'])}")


@workflows_app.command("start")
def start(
    flow: str,
    event: Annotated[list[str], typer.Option("--event", "-e", help="event to raise (repeatable)")],
    sequence: Annotated[str, typer.Option("--sequence", "-s", help="the run's sequence, e.g. shot:123")] = "",
    config: ConfigOption = None,
) -> None:
    """Ask the daemon to start a run of FLOW raising EVENT for SEQUENCE."""
    event_id = _request(_settings(config), "start", {"flow": flow, "triggers": [[sequence, e] for e in event]})
    console.print(f"start requested (event {event_id}); the run is {flow}-{event_id}")


@workflows_app.command("retry")
def retry(run_id: str, config: ConfigOption = None) -> None:
    """Run a run's failed steps again and carry on from there."""
    event_id = _request(_settings(config), "retry", {"run": run_id})
    console.print(f"retry of {run_id} requested (event {event_id})")


@workflows_app.command("continue")
def continue_run(run_id: str, config: ConfigOption = None) -> None:
    """Carry on a stopped run where it left off (its failed steps stay failed)."""
    event_id = _request(_settings(config), "continue", {"run": run_id})
    console.print(f"continue of {run_id} requested (event {event_id})")


@workflows_app.command("recover")
def recover(flow: str, run_id: str, config: ConfigOption = None) -> None:
    """A new run of FLOW that skips the steps RUN_ID's chain finished and reruns the rest."""
    event_id = _request(_settings(config), "start", {"flow": flow, "mode": "recover", "run_id": run_id})
    console.print(f"recovery of {run_id} requested (event {event_id})")


@workflows_app.command("cancel")
def cancel(run_id: str, config: ConfigOption = None) -> None:
    """Stop a run: no new step starts, running steps finish, the run ends as cancelled."""
    event_id = _request(_settings(config), "cancel", {"run": run_id})
    console.print(f"cancel of {run_id} requested (event {event_id})")
