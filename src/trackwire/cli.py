"""The ``trackwire`` command."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Column, Table

from trackwire.automations.commands import app as automations_app
from trackwire.config import Settings, load_settings
from trackwire.core.event import Event, Ref, dumps
from trackwire.errors import ConfigError, TrackwireError
from trackwire.ports import Store
from trackwire.store import open_store
from trackwire.workflows.cli import workflows_app

__all__ = ["app", "main"]

app = typer.Typer(help="Trackwire: the event daemon for production trackers.", no_args_is_help=True)
deadletters_app = typer.Typer(help="Inspect, replay and discard dead-lettered deliveries.", no_args_is_help=True)
plugins_app = typer.Typer(help="List plugins and reactivate deactivated ones.", no_args_is_help=True)
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(plugins_app, name="plugins")
app.add_typer(automations_app, name="automations")
app.add_typer(workflows_app, name="workflows")

console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="configuration file (default: $TRACKWIRE_CONFIG or ./trackwire.toml)"),
]


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc


def _store(settings: Settings) -> Store:
    return open_store(settings.store_url)


@app.command()
def run(
    config: ConfigOption = None,
    demo: Annotated[bool, typer.Option(help="also run the demo source and the example plugins")] = False,
    web: Annotated[bool | None, typer.Option(help="serve the dashboard (default: from the config)")] = None,
) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    from trackwire.logsetup import setup_logging
    from trackwire.runtime.daemon import Daemon

    overrides: dict[str, Any] = {}
    if demo:
        overrides["demo.enabled"] = True
    if web is not None:
        overrides["web.enabled"] = web
    settings = _settings(config, **overrides)
    if demo and not settings.plugins:
        from trackwire.demo import demo_plugin_paths

        settings = settings.model_copy(update={"plugins": demo_plugin_paths()})
    login = ""
    if demo and settings.web.enabled and settings.web.password is None and settings.web.token is None:
        # The demo's dashboard needs a login too: a fresh password for this run, shown once here.
        import secrets

        from pydantic import SecretStr

        password = secrets.token_urlsafe(9)
        settings = settings.model_copy(
            update={"web": settings.web.model_copy(update={"password": SecretStr(password)})}
        )
        login = f" (log in as [bold]{settings.web.username}[/bold] with password [bold]{password}[/bold])"
    setup_logging(settings.log, settings.base_dir)
    if settings.web.enabled:
        console.print(f"[bold]Dashboard:[/bold] http://{settings.web.host}:{settings.web.port}/{login}")
    try:
        asyncio.run(Daemon(settings).run())
    except TrackwireError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc


@app.command()
def web(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="address to bind (default: web.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: web.port)")] = None,
) -> None:
    """Serve the dashboard, API and webhooks against the store alone (no daemon in this process)."""
    from trackwire.web.server import serve_store

    settings = _settings(config)
    web_settings = settings.web.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v})
    console.print(
        f"[bold]Dashboard:[/bold] http://{web_settings.host}:{web_settings.port}/ (store {settings.store_url})"
    )
    serve_store(settings.store_url, web_settings, shotgrid_site=settings.shotgrid.site)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="where to write trackwire.toml and plugins/")] = Path("."),
    force: Annotated[bool, typer.Option(help="overwrite existing files")] = False,
) -> None:
    """Write a commented starter configuration and an example plugin."""
    from trackwire.demo import STARTER_CONFIG, STARTER_PLUGIN

    folder.mkdir(parents=True, exist_ok=True)
    targets = {folder / "trackwire.toml": STARTER_CONFIG, folder / "plugins" / "example.py": STARTER_PLUGIN}
    for path in targets:
        if path.exists() and not force:
            err.print(f"{path} exists; use --force to overwrite")
            raise typer.Exit(1)
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        console.print(f"wrote {path}")


@app.command("config-reference")
def config_reference_command() -> None:
    """Print the configuration reference (Markdown) generated from the settings model."""
    from trackwire.configdoc import config_reference

    print(config_reference(), end="")


@app.command()
def emit(
    event_type: Annotated[str | None, typer.Argument(help="event type, e.g. Shotgun_Task_Change")] = None,
    config: ConfigOption = None,
    entity: Annotated[str | None, typer.Option(help="Type:id, e.g. Shot:1234")] = None,
    project: Annotated[str | None, typer.Option(help="Project:id")] = None,
    attribute: Annotated[str | None, typer.Option()] = None,
    old: Annotated[str | None, typer.Option()] = None,
    new: Annotated[str | None, typer.Option()] = None,
    data: Annotated[str | None, typer.Option(help="JSON object kept as the event's data")] = None,
    source: Annotated[str, typer.Option()] = "cli",
    source_id: Annotated[str | None, typer.Option(help="dedupe id (default: a fresh one)")] = None,
    json_lines: Annotated[
        Path | None, typer.Option("--json", help="file of JSON events, one per line ('-': stdin)")
    ] = None,
) -> None:
    """Append an event (from flags) or many (from JSON lines) to the log."""
    settings = _settings(config)
    events: list[Event] = []
    try:
        if json_lines is not None:
            stream = sys.stdin if str(json_lines) == "-" else json_lines.open(encoding="utf-8")
            for number, line in enumerate(stream, 1):
                if line.strip():
                    events.append(_event_from_line(line, number, source))
        elif event_type is not None:
            events.append(
                Event(
                    source=source,
                    source_id=source_id or f"{time.time_ns()}",
                    type=event_type,
                    entity=Ref.from_json(entity),
                    project=Ref.from_json(project),
                    attribute=attribute,
                    old=old,
                    new=new,
                    data=_json_object(data, "--data") if data else {},
                )
            )
        else:
            err.print("give an event type, or --json FILE")
            raise typer.Exit(2)
    except OSError as exc:
        err.print(f"[red]cannot read events:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except (ValueError, KeyError) as exc:
        err.print(f"[red]bad event:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    store = _store(settings)
    try:
        result = store.append(events)
    finally:
        store.close()
    console.print(f"appended {len(result.new)} event(s), {len(events) - len(result.new)} already stored")


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{where}: a JSON object is expected, got {type(value).__name__}")
    return value


def _event_from_line(line: str, number: int, source: str) -> Event:
    where = f"line {number}"
    try:
        return _event_from_json(_json_object(line, where), source, f"{number}")
    except ValueError as exc:
        raise ValueError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from exc


def _event_from_json(raw: dict[str, Any], source: str, fallback_id: str) -> Event:
    if "type" not in raw:
        raise ValueError("each JSON event needs a 'type'")
    return Event(
        source=raw.get("source", source),
        source_id=str(raw.get("source_id", f"{time.time_ns()}-{fallback_id}")),
        type=raw["type"],
        entity=Ref.from_json(raw.get("entity")),
        project=Ref.from_json(raw.get("project")),
        user=Ref.from_json(raw.get("user")),
        attribute=raw.get("attribute"),
        old=raw.get("old"),
        new=raw.get("new"),
        data=raw.get("data") or {},
        key=raw.get("key"),
    )


@app.command()
def tail(
    config: ConfigOption = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f")] = True,
    last: Annotated[int, typer.Option(help="show this many recent events first")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document per line")] = False,
) -> None:
    """Print events as they are appended."""
    store = _store(_settings(config))
    position = max(0, store.last_id() - last)
    try:
        while True:
            records = store.read_after(position, 500)
            for record in records:
                event = record.event
                if as_json:
                    print(json.dumps({**json.loads(record.body), "id": record.id}), flush=True)
                else:
                    detail = f" {event.attribute}: {event.old!r} -> {event.new!r}" if event.attribute else ""
                    console.print(
                        f"[dim]{record.id:>8}[/dim] {event.occurred:%H:%M:%S} [bold]{event.type}[/bold] "
                        f"{event.entity or ''}{detail} [dim]({event.source})[/dim]",
                        highlight=False,
                    )
                position = record.id
            if not follow and not records:
                return
            if not records:
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


@app.command()
def status(config: ConfigOption = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Consumers (ordering groups), their lag and failures; sources and their cursors."""
    store = _store(_settings(config))
    try:
        last = store.last_id()
        counts: dict[str, dict[str, int]] = getattr(store, "delivery_counts", dict)()
        groups = store.groups()
        cursors: list[tuple[str, Any, str]] = getattr(store, "cursors", list)()
    finally:
        store.close()
    if as_json:
        print(
            dumps(
                {
                    "last_event": last,
                    "groups": [
                        {
                            "name": g.name,
                            "position": g.position,
                            "lag": last - g.position,
                            "state": g.state,
                            "reason": g.reason,
                            "deliveries": counts.get(g.name, {}),
                        }
                        for g in groups
                    ],
                    "sources": [{"source": s, "cursor": c, "updated": u} for s, c, u in cursors],
                }
            )
        )
        return
    console.print(f"last event: [bold]{last}[/bold]")
    table = Table("group", "state", "position", "lag", "pending", "retrying", "dead", "reason")
    for g in groups:
        c = counts.get(g.name, {})
        table.add_row(
            g.name,
            g.state,
            str(g.position),
            str(last - g.position),
            str(c.get("pending", 0) + c.get("running", 0)),
            str(c.get("retry", 0)),
            str(c.get("dead", 0)),
            g.reason or "",
        )
    console.print(table)
    if cursors:
        sources = Table("source", "cursor", "updated")
        for s, c, u in cursors:
            sources.add_row(s, json.dumps(c, default=str)[:80], u)
        console.print(sources)


@app.command()
def replay(
    group: Annotated[str, typer.Argument(help="ordering group (plugin), or group:consumer")],
    first: Annotated[int, typer.Option("--from", help="first event id")],
    last: Annotated[int | None, typer.Option("--to", help="last event id (default: the newest)")] = None,
    config: ConfigOption = None,
    chunk: Annotated[int, typer.Option(help="events queued per transaction")] = 10_000,
) -> None:
    """Deliver a range of the log again to one group (or only one of its consumers)."""
    name, _, consumer = group.partition(":")
    store = _store(_settings(config))
    try:
        if name not in {g.name for g in store.groups()}:
            err.print(f"no group called {name!r}: see `trackwire status`")
            raise typer.Exit(1)
        end = last if last is not None else store.last_id()
        total = 0
        with Progress(console=console) as progress:
            task = progress.add_task(f"queueing {first}..{end} for {group}", total=max(1, end - first + 1))
            start = first
            while start <= end:
                stop = min(end, start + chunk - 1)
                total += store.replay_range(name, start, stop, (consumer,) if consumer else ())
                progress.update(task, advance=stop - start + 1)
                start = stop + 1
    finally:
        store.close()
    console.print(f"queued {total} deliveries; a running daemon picks them up within a second")


@deadletters_app.command("list")
def deadletters_list(
    group: Annotated[str | None, typer.Argument()] = None,
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """Dead-lettered deliveries, oldest first."""
    store = _store(_settings(config))
    try:
        rows = store.dead_letters(group, limit=limit)
    finally:
        store.close()
    table = Table("group", "event", "key", "attempts", "error")
    for grp, row in rows:
        table.add_row(grp, str(row.event_id), row.key, str(row.attempts), (row.error or "")[:80])
    console.print(table)


@deadletters_app.command("show")
def deadletters_show(group: str, event_id: int, config: ConfigOption = None) -> None:
    """One dead letter: the event, the error and its traceback."""
    store = _store(_settings(config))
    try:
        rows = [r for g, r in store.dead_letters(group, limit=1, after=(group, event_id - 1)) if r.event_id == event_id]
        event = store.get_event(event_id)
    finally:
        store.close()
    if not rows:
        err.print(f"no dead letter for event {event_id} in group {group}")
        raise typer.Exit(1)
    row = rows[0]
    console.print(f"[bold]group[/bold] {group}  [bold]event[/bold] {event_id}  [bold]attempts[/bold] {row.attempts}")
    console.print(f"[bold]consumers[/bold] {', '.join(row.consumers)}")
    console.print(f"[bold red]error[/bold red] {row.error}")
    if row.traceback:
        console.print(row.traceback, highlight=False, markup=False)
    if event is not None:
        console.print_json(dumps({"type": event.type, "entity": str(event.entity), "data": event.data}))


@deadletters_app.command("replay")
def deadletters_replay(
    group: str,
    event_ids: Annotated[list[int] | None, typer.Argument(help="event ids (default: all of the group's)")] = None,
    config: ConfigOption = None,
) -> None:
    """Queue dead letters again with a fresh attempt count."""
    store = _store(_settings(config))
    try:
        n = store.requeue_dead(group, event_ids or None)
    finally:
        store.close()
    console.print(f"requeued {n} dead letter(s) of {group}")


@deadletters_app.command("discard")
def deadletters_discard(
    group: str,
    event_ids: Annotated[list[int] | None, typer.Argument(help="event ids (default: all of the group's)")] = None,
    config: ConfigOption = None,
) -> None:
    """Forget dead letters for good."""
    store = _store(_settings(config))
    try:
        n = store.discard_dead(group, event_ids or None)
    finally:
        store.close()
    console.print(f"discarded {n} dead letter(s) of {group}")


@plugins_app.command("list")
def plugins_list(config: ConfigOption = None) -> None:
    """Plugin groups in processing order, their files, policy and state."""
    from trackwire.plugins.discovery import discover
    from trackwire.plugins.reload import check_syntax

    settings = _settings(config)
    try:
        specs = discover(settings)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    store = _store(settings)
    try:
        states = {g.name: g for g in store.groups()}
    finally:
        store.close()
    table = Table(
        "#", "group", Column("plugin file", overflow="fold"), "kind", "policy", Column("state", overflow="fold")
    )
    for number, spec in enumerate(specs, 1):
        record = states.get(spec.name)
        state = "new" if record is None else record.state
        if record is not None and record.reason:
            state += f" ({record.reason[:60]})"
        for plugin in spec.plugins:
            problem = check_syntax(str(plugin.path))
            table.add_row(
                str(number),
                spec.name,
                str(plugin.path),
                plugin.kind,
                spec.policy,
                f"[red]{problem}[/red]" if problem else state,
            )
    console.print(table)


@plugins_app.command("reactivate")
def plugins_reactivate(group: str, config: ConfigOption = None) -> None:
    """Reactivate a deactivated group; it resumes from its last good event."""
    store = _store(_settings(config))
    try:
        store.set_group_state(group, "active", None)
    finally:
        store.close()
    console.print(f"{group} reactivated")


@app.command("import-shotgunevents")
def import_shotgunevents(
    conf: Annotated[Path, typer.Argument(help="the old shotgunEventDaemon.conf")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the Trackwire config to write")] = Path(
        "trackwire.toml"
    ),
    id_file: Annotated[Path | None, typer.Option(help="the .id file (default: [daemon] eventIdFile)")] = None,
    start: Annotated[str | None, typer.Option(help="'now' or an EventLogEntry id instead of the id file")] = None,
    concurrency: Annotated[int, typer.Option(help="entities handled at once by the plugin group")] = 4,
    force: Annotated[bool, typer.Option(help="overwrite the output and the stored cursor")] = False,
) -> None:
    """Write an equivalent Trackwire config from a shotgunEvents conf, and resume from its id file."""
    from trackwire.plugins.shotgunevents_import import run_import

    for line in run_import(conf, output, id_file=id_file, start=start, concurrency=concurrency, force=force):
        console.print(line)


def main() -> None:
    try:
        app()
    except TrackwireError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(1)
