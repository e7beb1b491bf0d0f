"""``trackwire automations list|show|test|explain``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trackwire.config import Settings, load_settings
from trackwire.errors import ConfigError

if TYPE_CHECKING:  # imported inside the commands, so `trackwire` starts fast
    from trackwire.automations.state import AutomationState, FiringRecord
    from trackwire.core.event import Event
    from trackwire.core.triggers import Automation, StateKey
    from trackwire.ports import EventStore

__all__ = ["app"]

app = typer.Typer(help="List, inspect, dry-run and explain declarative automations.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="configuration file")]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
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
        err.print(f"[red]error:[/red] {escape(str(problem))}")
    if state:
        state.close()
    if errors:
        raise typer.Exit(1)


@app.command()
def show(name: str, config: ConfigOption = None, limit: int = 20) -> None:
    """One automation: its trigger, actions, open buckets (as committed: the checkpoint plus the journal) and
    recent firings with action outcomes."""
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
    from trackwire.store import open_store

    store = open_store(settings.store_url)
    try:
        steps = len(state.journal())
        durable = _durable_state(found, settings, state, store)
        console.print(
            f"open state entries: {len(durable)} (the last checkpoint"
            + (f" and {steps} journaled evaluation steps replayed over it)" if steps else ")")
        )
        for (_, path, key), value in sorted(durable.items(), key=lambda item: item[0])[:limit]:
            size = len(value.get("times", value.get("windows", value.get("children", []))))
            console.print(f"  {path} [{key}]: {size} pending")
        console.print(_firings_table(state.firings(name, limit)))
    finally:
        store.close()
        state.close()


def _durable_state(
    found: Automation,
    settings: Settings,
    state: AutomationState,
    store: EventStore,
    notes: list[str] | None = None,
) -> dict[StateKey, dict[str, Any]]:
    """The automation's committed trigger state: the last checkpoint with the journal replayed over it, as the
    daemon restores it at start (the checkpoint alone misses everything evaluated since it was written).
    ``notes`` collects the replay's narration."""
    from trackwire.automations.replay import durable_evaluator

    durable, _ = durable_evaluator(
        state,
        [found],
        lambda ids: [r.event for r in store.get_records(ids)],
        lateness=settings.automations.lateness,
        max_depth=settings.automations.max_depth,
        follow_bound=settings.automations.follow_bound,
        trace=None if notes is None else notes.append,
    )
    return {k: v for k, v in durable.state.items() if k[0] == found.name}


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
        err.print(f"[red]error:[/red] {escape(str(exc))}")
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
    event: Annotated[int | None, typer.Option("--event", help="explain this event id in detail")] = None,
    from_id: Annotated[int | None, typer.Option("--from", help="first event id of a range (default: last 100)")] = None,
    to_id: Annotated[int | None, typer.Option("--to", help="last event id of a range")] = None,
    since: Annotated[str | None, typer.Option(help="range by event time: from this ISO time")] = None,
    until: Annotated[str | None, typer.Option(help="range by event time: up to this ISO time")] = None,
    events: Annotated[
        Path | None, typer.Option("--events", help="dry run: replay recorded events from empty state instead")
    ] = None,
) -> None:
    """Why NAME fired or did not, from the daemon's records: its firings, its committed trigger state (the last
    checkpoint plus the journal, replayed and narrated), whether each event was evaluated, and the trigger's
    conditions on it. With --events, replays a file from empty state instead (nothing recorded is read)."""
    settings = _settings(config)
    automations, _ = _definitions(settings)
    found = next((a for a in automations if a.name == name), None)
    if found is None:
        err.print(f"no automation named {name!r}")
        raise typer.Exit(1)
    if events is not None:
        _explain_dry_run(found, settings, events, event)
        return
    _explain_recorded(found, settings, event, from_id, to_id, since, until)


def _explain_dry_run(found: Automation, settings: Settings, events: Path, event: int | None) -> None:
    from trackwire.automations.dryrun import dry_run, read_events

    recorded = read_events(events)
    notes: list[str] = []
    outcomes = dry_run([found], recorded, lateness=settings.automations.lateness, trace=notes.append)
    wanted = f"event {event}" if event is not None else None
    for line in notes:
        if wanted is None or wanted + " " in line + " " or wanted + ":" in line or f"[{event}]" in line:
            console.print(line, markup=False, highlight=False)
    console.print(f"dry run from empty state: {len(recorded)} events, {len(outcomes)} firings")


def _explain_recorded(
    found: Automation,
    settings: Settings,
    event: int | None,
    from_id: int | None,
    to_id: int | None,
    since: str | None,
    until: str | None,
) -> None:
    import time

    from trackwire.automations.explain import Recorded, explain_event, summary
    from trackwire.automations.service import GROUP
    from trackwire.store import open_store

    state = _state(settings)
    if state is None:
        err.print(f"nothing recorded: {settings.store_url} is not an existing SQLite store")
        raise typer.Exit(1)
    store = open_store(settings.store_url)
    try:
        notes: list[str] = []
        durable = _durable_state(found, settings, state, store, notes)
        position = next((g.position for g in store.groups() if g.name == GROUP), None)
        if event is not None:
            first, last = event, event
            chosen = [r.event for r in store.get_records([event])]
            if not chosen:
                err.print(f"event {event} is not in the log")
                raise typer.Exit(1)
        else:
            chosen = _range(store, from_id, to_id, since, until)
            first = min((e.id or 0 for e in chosen), default=0)
            last = max((e.id or 0 for e in chosen), default=-1)
        recorded = Recorded(
            found,
            state.firings_with(found.name, first, last),
            durable,
            position,
            state.applied(first - 1),
            notes,
        )
        now = time.time()
        lines = explain_event(recorded, chosen[0], now) if event is not None else summary(recorded, chosen, now)
        for line in lines:
            console.print(line, markup=False, highlight=False)
        if event is None:
            console.print(f"{len(chosen)} events, {len(recorded.firings)} firings of {found.name} caused by them")
            if recorded.firings:
                console.print(_firings_table(recorded.firings))
    finally:
        store.close()
        state.close()


def _range(store: EventStore, first: int | None, last: int | None, since: str | None, until: str | None) -> list[Event]:
    """Events by id range (default: the last 100), filtered by event time when asked."""
    end = last if last is not None else store.last_id()
    start = first if first is not None else max(1, end - 99)
    low = datetime.fromisoformat(since) if since else None
    high = datetime.fromisoformat(until) if until else None
    out: list[Event] = []
    position = start - 1
    while position < end:
        batch = store.read_after(position, 1000)
        if not batch:
            break
        for record in batch:
            e = record.event
            if record.id > end:
                break
            if (low is None or e.occurred >= _aware(low)) and (high is None or e.occurred <= _aware(high)):
                out.append(e)
        position = batch[-1].id
    return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
