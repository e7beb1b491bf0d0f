"""``trackwire import-shotgunevents``: turn a shotgunEventDaemon.conf and its id file into Trackwire's.

The conf becomes a TOML config (site, script, plugin paths in the same order, emails, per-plugin
logs). The id file (a pickle of ``{plugin_dir: {plugin: (last_id, {backlog_id: expiry})}}``, or
the legacy plain-integer file) becomes the ShotGrid source's cursor, starting at the oldest id any
plugin still needs, plus a per-plugin ``resume`` option so each plugin skips what it already
handled. A corrupt or empty id file is an error that says so and asks for ``--start``; it is never
silently ignored.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import pickle
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trackwire.errors import TrackwireError

__all__ = ["IdFileState", "ImportProblem", "LegacyConf", "read_conf", "read_id_file", "run_import", "to_toml"]


class ImportProblem(TrackwireError):
    """The old configuration or id file cannot be imported as it is; the message says what to do."""


@dataclass
class LegacyConf:
    path: Path
    site: str
    script_name: str
    script_key: str | None
    key_from_env: str | None
    proxy: str | None
    use_session_uuid: bool
    plugin_paths: list[str]
    id_file: str | None
    fetch_interval: float
    batch_size: int
    log_level: str
    log_dir: str | None
    emails: dict[str, Any] = field(default_factory=dict)


@dataclass
class IdFileState:
    """Where the poller starts (``last_id`` read) and what each plugin had already handled."""

    last_id: int
    backlog: dict[int, float]
    plugins: dict[str, dict[str, Any]]  # stem -> {"after": id, "backlog": [ids]}
    notes: list[str] = field(default_factory=list)


_LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "ERROR"}


def read_conf(path: Path) -> LegacyConf:
    """Read the conf as shotgunEvents does (environment variables usable as ``%(NAME)s``)."""
    parser = configparser.ConfigParser(dict(os.environ))
    try:
        if not parser.read(path, encoding="utf-8"):
            raise ImportProblem(f"{path}: cannot read the file")
    except configparser.Error as exc:
        raise ImportProblem(f"{path}: not a valid shotgunEventDaemon.conf: {exc}") from exc

    def get(section: str, key: str, default: str | None = None) -> str | None:
        if not parser.has_section(section) or key not in parser[section]:
            return default
        try:
            return parser.get(section, key)
        except configparser.InterpolationMissingOptionError as exc:
            raw = parser.get(section, key, raw=True)
            unset = [
                n for n in re.findall(r"%\((\w+)\)s", raw) if n not in os.environ and n.lower() not in parser[section]
            ]
            if not unset:
                raise ImportProblem(f"{path}: [{section}] {key}: {exc}") from exc
            names = ", ".join(unset)
            raise ImportProblem(
                f"{path}: [{section}] {key} is {raw!r}, which reads the environment variable {names}, and it is not "
                f"set here; set it as you did for shotgunEvents and run the import again"
            ) from exc
        except configparser.Error as exc:
            raise ImportProblem(f"{path}: [{section}] {key}: {exc}") from exc

    site, name = get("shotgun", "server"), get("shotgun", "name")
    paths = [p.strip() for p in (get("plugins", "paths") or "").split(",") if p.strip()]
    if not site or not name or not paths:
        raise ImportProblem(f"{path}: [shotgun] server, [shotgun] name and [plugins] paths are required")
    raw_key = parser.get("shotgun", "key", raw=True, fallback="")
    env_key = raw_key[2:-2] if raw_key.startswith("%(") and raw_key.endswith(")s") else None
    level = get("daemon", "logging", "20") or "20"
    log_mode = get("daemon", "logMode", "0")
    emails: dict[str, Any] = {"enabled": (get("emails", "enabled", "False") or "").strip().lower() == "true"}
    if emails["enabled"]:
        emails.update(
            server=get("emails", "server", "localhost"),
            port=int(get("emails", "port", "25") or 25),
            use_tls=(get("emails", "useTLS", "False") or "").lower() == "true",
            username=get("emails", "username"),
            sender=get("emails", "from", "trackwire@localhost"),
            to=[a.strip() for a in (get("emails", "to") or "").split(",") if a.strip()],
            subject=get("emails", "subject", "[SG]"),
        )
    return LegacyConf(
        path=path,
        site=site,
        script_name=name,
        script_key=None if env_key else get("shotgun", "key"),
        key_from_env=env_key,
        proxy=get("shotgun", "proxy_server") or None,
        use_session_uuid=(get("shotgun", "use_session_uuid", "True") or "").strip().lower() == "true",
        plugin_paths=paths,
        id_file=get("daemon", "eventIdFile"),
        fetch_interval=float(get("daemon", "fetch_interval", "5") or 5),
        batch_size=int(get("daemon", "max_event_batch_size", "500") or 500),
        log_level=_LEVELS.get(int(level) if level.isdigit() else 20, "INFO"),
        log_dir=(get("daemon", "logPath") or None) if log_mode == "1" else None,
        emails=emails,
    )


class _SafeUnpickler(pickle.Unpickler):
    """The id file holds ints, tuples, dicts and datetimes: nothing else may be loaded."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "datetime" and name in ("datetime", "timedelta", "timezone"):
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 pickles a datetime's bytes
            return super().find_class(module, name)
        if module in ("builtins", "copyreg") and name in ("set", "frozenset", "_reconstructor", "object"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the id file refers to {module}.{name}, which an id file never holds")


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def read_id_file(path: Path, plugin_paths: list[str]) -> IdFileState:
    """The poller cursor and per-plugin resume points; raises :class:`ImportProblem` when unusable."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportProblem(f"{path}: cannot read the id file ({exc})") from exc
    if not raw.strip():
        raise ImportProblem(f"{path}: the id file is empty (shotgunEvents was probably killed while writing it)")
    text = raw.decode("ascii", "ignore").strip()
    if text.isdigit():
        return IdFileState(int(text), {}, {}, [f"legacy id file: every plugin resumes after EventLogEntry {text}"])
    try:
        data = _SafeUnpickler(io.BytesIO(raw)).load()
    except Exception as exc:
        raise ImportProblem(f"{path}: the id file is corrupt ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise ImportProblem(f"{path}: the id file holds a {type(data).__name__}, not the per-plugin state")
    wanted = {os.path.normpath(p) for p in plugin_paths}
    plugins: dict[str, dict[str, Any]] = {}
    backlog: dict[int, float] = {}
    notes: list[str] = []
    next_needed: list[int] = []
    for collection, states in data.items():
        if os.path.normpath(str(collection)) not in wanted:
            notes.append(f"state of {collection} ignored: that folder is not in [plugins] paths")
            continue
        for stem, state in (states or {}).items():
            last, plugin_backlog = (state, {}) if isinstance(state, int) else tuple(state)
            if not last:
                continue  # shotgunEvents treats 0 as "no state" too
            ids = sorted(int(i) for i in (plugin_backlog or {}))
            for backlog_id in ids:
                backlog[backlog_id] = max(backlog.get(backlog_id, 0.0), _epoch(plugin_backlog[backlog_id]))
            plugins[str(stem)] = {"after": int(last), "backlog": ids}
            next_needed.append(min([int(last) + 1, *ids]))
    if not next_needed:
        raise ImportProblem(f"{path}: the id file holds no plugin state for the configured plugin paths")
    last_id = min(next_needed) - 1
    return IdFileState(last_id, {i: e for i, e in backlog.items() if i > last_id}, plugins, notes)


def _str(value: Any) -> str:
    return json.dumps(str(value))


def to_toml(conf: LegacyConf, state: IdFileState | None, start: str | int, store_url: str, concurrency: int) -> str:
    """The Trackwire configuration equivalent to ``conf`` (plugins resume per ``state``)."""
    lines = [f"# Written by `trackwire import-shotgunevents {conf.path}`.", "", "[store]", f"url = {_str(store_url)}"]
    lines += ["", "[log]", f'level = "{conf.log_level}"', "", "[shotgrid]"]
    lines += [f"site = {_str(conf.site)}", f"script_name = {_str(conf.script_name)}"]
    if conf.script_key:
        lines.append(f"script_key = {_str(conf.script_key)}")
    else:
        lines.append(f"# script_key: set TRACKWIRE_SHOTGRID__SCRIPT_KEY (the old conf read ${conf.key_from_env})")
    if conf.proxy:
        lines.append(f"proxy = {_str(conf.proxy)}")
    lines += [f"fetch_interval = {conf.fetch_interval}", f"batch_size = {conf.batch_size}"]
    lines.append(f"use_session_uuid = {str(conf.use_session_uuid).lower()}")
    lines.append(f"start = {start if isinstance(start, int) else _str(start)}")
    if conf.log_dir:
        lines.append(f"log_dir = {_str(conf.log_dir)}")
    if conf.emails.get("enabled"):
        lines += ["", "[shotgrid.emails]", "enabled = true"]
        for key in ("server", "sender", "subject", "username"):
            if conf.emails.get(key):
                lines.append(f"{key} = {_str(conf.emails[key])}")
        lines += [f"port = {conf.emails['port']}", f"use_tls = {str(conf.emails['use_tls']).lower()}"]
        lines.append(f"to = {json.dumps(conf.emails['to'])}")
        lines.append("# password: set TRACKWIRE_SHOTGRID__EMAILS__PASSWORD")
    for folder in conf.plugin_paths:
        lines += ["", "[[plugins]]", f"path = {_str(folder)}", 'kind = "shotgunevents"', f"concurrency = {concurrency}"]
        if state is None or not os.path.isdir(folder):
            continue
        stems = {p.stem for p in Path(folder).glob("*.py")}
        for stem, resume in sorted(state.plugins.items()):
            if stem in stems and (resume["after"] > state.last_id or resume["backlog"]):
                lines += [f"[plugins.options.resume.{_str(stem)}]", f"after = {resume['after']}"]
                lines.append(f"backlog = {json.dumps(resume['backlog'])}")
    return "\n".join(lines) + "\n"


def run_import(
    conf_path: Path,
    output: Path,
    *,
    id_file: Path | None = None,
    start: str | None = None,
    concurrency: int = 4,
    force: bool = False,
) -> list[str]:
    """Write the TOML config and the source cursor; return what was done, line by line."""
    from trackwire.config import load_settings
    from trackwire.store import open_store

    if output.exists() and not force:
        raise ImportProblem(f"{output} exists; pass --force to overwrite it")
    conf = read_conf(conf_path)
    report: list[str] = []
    state: IdFileState | None = None
    chosen: str | int = "now"
    if start is not None:
        chosen = int(start) if start.isdigit() else start
        if chosen != "now" and not isinstance(chosen, int):
            raise ImportProblem(f"--start must be 'now' or an EventLogEntry id, got {start!r}")
        report.append(f"starting at {chosen!r} as asked (the id file is not read)")
    else:
        source = id_file or (Path(conf.id_file) if conf.id_file else None)
        if source is None or not source.exists():
            raise ImportProblem(
                f"no id file found ({source}); choose where to start: --start now (skip the backlog, like a "
                "fresh shotgunEvents) or --start <EventLogEntry id>"
            )
        try:
            state = read_id_file(source, conf.plugin_paths)
        except ImportProblem as exc:
            raise ImportProblem(
                f"{exc}. Choose where to start: --start now, or --start <EventLogEntry id> (e.g. the last id "
                "in your shotgunEvents logs)"
            ) from exc
        report += state.notes
        report.append(f"the ShotGrid poller resumes after EventLogEntry {state.last_id}")
    store_url = f"sqlite:///{output.resolve().parent / 'trackwire.db'}"
    output.write_text(to_toml(conf, state, chosen, store_url, concurrency), encoding="utf-8")
    report.append(f"wrote {output}")
    if state is not None:
        settings = load_settings(output)
        store = open_store(settings.store_url)
        try:
            cursor = {"last_id": state.last_id, "backlog": {str(k): v for k, v in sorted(state.backlog.items())}}
            if store.get_cursor(settings.shotgrid.source) is not None and not force:
                raise ImportProblem(f"{settings.store_url} already has a ShotGrid cursor; pass --force to replace it")
            store.append([], source=settings.shotgrid.source, cursor=cursor)
        finally:
            store.close()
        report.append(f"stored the cursor in {settings.store_url} ({len(state.backlog)} gap ids still awaited)")
    return report
