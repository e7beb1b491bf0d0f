"""``trackwire automations list|show|test|explain``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from trackwire.config import Settings, load_settings
from trackwire.errors import ConfigError

if TYPE_CHECKING:  # imported inside the commands, so `trackwire` starts fast
    from trackwire.automations.state import AutomationState, FiringRecord
    from trackwire.core.event import Event
    from trackwire.core.triggers import Automation

__all__ = ["app"]

app = typer.Typer(help="List, inspect, dry-run and explain declarative automations.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="configuration file")]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _definitions(settings: Settings) -> tuple[list[Automation], list[ConfigError]]:
    from trackwire.automations.definitions import load_folder

    path = settings.automations.path
    if path is None:
        err.print("no automations folder configured ([automations] path = ...)")
        raise typer.Exit(2)
    return load_folder(settings.resolve(path))


def _state(settings: Settings) -> AutomationState | None:
    url = settings.store_url
    if not url.startswith("sqlite:///") or not Path(url.removeprefix("sqlite:///")).exists():
        return None
    from trackwire.store.sqlite.automation_state import SqliteAutomationState

    return SqliteAutomationState(url.removeprefix("sqlite:///"))


def _time(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def _firings_table(records: list[FiringRecord]) -> Table:
    table = Table("fired", "key", "reason", "events", "status", "actions")
    for r in records:
        actions = ", ".join(f"{o.get('name', '?')}: {o.get('status')} ({o.get('attempts', 0)})" for o in r.outcomes)
        table.add_row(r.created[:19], r.key, r.reason, " ".join(map(str, r.events[:10])), r.status, actions)
    return table


@app.command("list")
def list_(config: ConfigOption = None) -> None:
    """Every automation in the configured folder, with its firing counts."""
    from trackwire.automations.dryrun import describe

    settings = _settings(config)
    automations, errors = _definitions(settings)
    state = _state(settings)
    counts = state.counts() if state else {}
    table = Table("name", "enabled", "trigger", "actions", "fired (ok/failed/pending)", "file")
    for a in automations:
        c = counts.get(a.name, {})
        fired = f"{c.get('succeeded', 0)}/{c.get('failed', 0)}/{c.get('pending', 0)}"
        table.add_row(
            a.name, "yes" if a.enabled else "no", describe(a.trigger)[0].strip(),
            ", ".join(str(x["type"]) for x in a.actions), fired, Path(a.source).name,
        )  # fmt: skip
    console.print(table)
    for problem in errors:
        err.print(f"[red]error:[/red] {problem}")
    if state:
        state.close()
    if errors:
        raise typer.Exit(1)


@app.command()
def show(name: str, config: ConfigOption = None, limit: int = 20) -> None:
    """One automation: its trigger, actions, open buckets and recent firings with action outcomes."""
    from trackwire.automations.dryrun import describe

    settings = _settings(config)
    automations, _ = _definitions(settings)
    found = next((a for a in automations if a.name == name), None)
    if found is None:
        err.print(f"no automation named {name!r}")
        raise typer.Exit(1)
    console.print(f"[bold]{found.name}[/bold] ({found.source}){' — ' + found.description if found.description else ''}")
    for line in describe(found.trigger, "  "):
        console.print(line)
    for index, action in enumerate(found.actions):
        console.print(f"  action {index}: {action}")
    state = _state(settings)
    if state is None:
        return
    buckets = state.state_of(name)
    console.print(f"open state entries: {len(buckets)}")
    for path, key, value in buckets[:limit]:
        size = len(value.get("times", value.get("windows", value.get("children", []))))
        console.print(f"  {path} [{key}]: {size} pending")
    console.print(_firings_table(state.firings(name, limit)))
    state.close()


@app.command()
def test(
    file: Annotated[Path, typer.Argument(help="an automation file (TOML)")],
    events: Annotated[Path, typer.Option("--events", help="recorded events, one JSON envelope per line")],
    lateness: Annotated[float | None, typer.Option(help="allowed lateness, seconds (default: the config's)")] = None,
    config: ConfigOption = None,
) -> None:
    """Dry run: what FILE's automations would fire for the recorded events, and when (no actions run)."""
    from trackwire.automations.definitions import load_file
    from trackwire.automations.dryrun import dry_run, read_events

    try:
        automations = load_file(file)
        recorded = read_events(events)
    except (ConfigError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if lateness is None:
        lateness = _settings(config).automations.lateness if config is not None else 60.0
    outcomes = dry_run(automations, recorded, lateness=lateness)
    table = Table("when", "automation", "trigger", "key", "reason", "events")
    for o in outcomes:
        f = o.firing
        table.add_row(_time(o.when), f.automation, f.path, f.key, f.reason, " ".join(map(str, f.events)))
    console.print(table)
    console.print(f"{len(outcomes)} firings from {len(recorded)} events")


@app.command()
def explain(
    name: str,
    config: ConfigOption = None,
    events: Annotated[Path | None, typer.Option("--events", help="recorded events instead of the store's log")] = None,
    from_id: Annotated[int | None, typer.Option("--from", help="first event id (default: the last 1,000)")] = None,
    to_id: Annotated[int | None, typer.Option("--to", help="last event id")] = None,
    event: Annotated[int | None, typer.Option("--event", help="only what concerns this event id")] = None,
) -> None:
    """Why NAME fired or did not: replays events (from empty state) with a trace, and lists recorded firings."""
    from trackwire.automations.dryrun import dry_run, read_events

    settings = _settings(config)
    automations, _ = _definitions(settings)
    found = next((a for a in automations if a.name == name), None)
    if found is None:
        err.print(f"no automation named {name!r}")
        raise typer.Exit(1)
    recorded = read_events(events) if events is not None else _log_events(settings, from_id, to_id)
    notes: list[str] = []
    outcomes = dry_run([found], recorded, lateness=settings.automations.lateness, trace=notes.append)
    wanted = f"event {event}" if event is not None else None
    for line in notes:
        if wanted is None or wanted + " " in line + " " or wanted + ":" in line or f"[{event}]" in line:
            console.print(line, markup=False, highlight=False)
    console.print(f"replayed {len(recorded)} events: {len(outcomes)} firings")
    state = _state(settings)
    if state is not None:
        console.print(_firings_table(state.firings(name, 20)))
        state.close()


def _log_events(settings: Settings, first: int | None, last: int | None) -> list[Event]:
    from trackwire.store import open_store

    store = open_store(settings.store_url)
    try:
        end = last if last is not None else store.last_id()
        start = first if first is not None else max(1, end - 999)
        out: list[Event] = []
        position = start - 1
        while position < end:
            batch = store.read_after(position, 1000)
            if not batch:
                break
            out.extend(r.event for r in batch if r.id <= end)
            position = batch[-1].id
        return out
    finally:
        store.close()
