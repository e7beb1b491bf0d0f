"""Run shotgunEvents plugins unchanged: ``registerCallbacks(reg)`` and ``callback(sg, logger, event, args)``.

Loaded in the worker process of the ``shotgunevents`` ordering group (see ``plugins/discovery.py``),
one file after another in the documented order, callbacks in registration order.

What a legacy plugin sees:

- ``reg.registerCallback(sgScriptName, sgScriptKey, callback, matchEvents=None, args=None,
  stopOnError=True)`` (positional or keyword), ``reg.logger`` (``plugin.<name>``), ``reg.getLogger()``,
  ``reg.setEmails(True | False | *addresses)``.
- Each callback gets its own ``shotgun_api3.Shotgun`` made with its script name and key (created on
  first use, one per worker thread), ``set_session_uuid(event["session_uuid"])`` before each call when
  ``shotgrid.use_session_uuid`` is on, and the ``EventLogEntry`` dict exactly as shotgun-api3
  returned it (``created_at`` in shotgun-api3's local time zone). All callbacks of one event share the
  same dict object, as they did.

On a callback error (with ``policy = "deactivate"``, the default) the plugin alone is deactivated,
durably, with the event it failed on; it stays off until its file changes (``touch`` is enough), then
the events it missed are replayed to it from the one it failed on. With ``policy = "retry"`` the
error goes to the engine instead: retried with backoff, then dead-lettered, without stopping anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trackwire.core.event import Event
from trackwire.core.matching import MatchEventsFilter
from trackwire.plugins.api import Context
from trackwire.plugins.loader import LoadedConsumer, LoadedPlugin, import_plugin
from trackwire.plugins.sg_logging import RateLimitedEmailHandler, attach_file_handler

__all__ = ["LegacyPlugin", "Registrar", "load_plugin", "sg_event_dict"]

log = logging.getLogger("trackwire.shotgunevents")

STATE_PREFIX = "shotgunevents-plugin:"


def _to_sg_time(value: Any, tz: Any) -> None:
    """Move every aware datetime inside ``value`` (a dict or list) to ``tz``, in place."""
    items = value.items() if type(value) is dict else enumerate(value)
    for key, item in items:
        kind = type(item)
        if kind is datetime:
            if item.tzinfo is not None:
                value[key] = item.astimezone(tz)
        elif kind is dict or kind is list:
            _to_sg_time(item, tz)


def sg_event_dict(event: Event, cache: dict[datetime, datetime] | None = None) -> dict[str, Any]:
    """The ``EventLogEntry`` dict a shotgunEvents callback receives (datetimes in shotgun-api3's local zone).

    It is ``event.data`` itself, converted in place: the worker decoded it for this delivery alone. Only
    ``created_at`` and ``meta`` can hold date-times (entity, user and project are links).
    """
    local = _LOCAL[0] if _LOCAL else _local_zone()
    data = event.data
    created = data.get("created_at")
    if type(created) is datetime and created.tzinfo is not None and created.tzinfo is not local:
        converted = None if cache is None else cache.get(created)
        if converted is None:
            converted = created.astimezone(local)  # LocalTimezone is slow (mktime): remember the answer
            if cache is not None:
                if len(cache) > 4096:
                    cache.clear()
                cache[created] = converted
        data["created_at"] = converted
    meta = data.get("meta")
    if type(meta) is dict:
        _to_sg_time(meta, local)
    if "type" not in data:
        data["type"] = "EventLogEntry"
    return data


_LOCAL: list[Any] = []


def _local_zone() -> Any:
    """shotgun-api3's local time zone object (imported on first use, then kept)."""
    from shotgun_api3.shotgun import SG_TIMEZONE

    _LOCAL[:] = [SG_TIMEZONE.local]
    return SG_TIMEZONE.local


@dataclass
class _Host:
    """What the worker knows of the site and the store (from the ``_trackwire`` option discovery adds)."""

    group: str
    policy: str
    store_url: str | None
    site: str | None
    proxy: str | None
    use_session_uuid: bool
    log_dir: str | None
    emails: dict[str, Any]
    _store: Any = None
    tz_cache: dict[datetime, datetime] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> _Host:
        tw = dict(options.get("_trackwire") or {})
        sg = dict(tw.get("shotgrid") or {})
        return cls(
            group=str(tw.get("group", "shotgunevents")),
            policy=str(tw.get("policy", "deactivate")),
            store_url=tw.get("store_url"),
            site=sg.get("site"),
            proxy=sg.get("proxy"),
            use_session_uuid=bool(sg.get("use_session_uuid", True)),
            log_dir=sg.get("log_dir"),
            emails=dict(sg.get("emails") or {}),
        )

    @property
    def store(self) -> Any:
        if self._store is None and self.store_url:
            from trackwire.store import open_store

            self._store = open_store(self.store_url)
        return self._store


@dataclass
class _Callback:
    plugin: LegacyPlugin
    name: str
    script_name: str
    script_key: str
    fn: Callable[..., Any]
    matcher: MatchEventsFilter
    args: Any
    stop_on_error: bool
    logger: logging.Logger
    _local: threading.local = field(default_factory=threading.local)

    def connection(self) -> Any:
        """This callback's own shotgun_api3 connection, one per worker thread (they are not thread-safe)."""
        sg = getattr(self._local, "sg", None)
        if sg is None:
            from shotgun_api3.shotgun import Shotgun

            host = self.plugin.host
            if not host.site:
                raise RuntimeError("shotgrid.site is not configured: plugins cannot connect to ShotGrid")
            sg = Shotgun(host.site, self.script_name, self.script_key, connect=False, http_proxy=host.proxy or None)
            self._local.sg = sg
        return sg

    def invoke(self, event: Event, ctx: Context) -> None:
        plugin = self.plugin
        off_from = plugin.deactivated_at
        if off_from is not None and (event.id is None or event.id >= off_from):
            # Off from the event it failed on. Older events of other entities still in flight run: under
            # shotgunEvents (one event at a time) they had run before the failure, and the replay after
            # a change of the file starts at the failed event, so skipping them would lose them for good.
            return
        entry = plugin.event_dict(event)
        if plugin.already_done(entry):
            return
        sg = self.connection()
        if plugin.host.use_session_uuid:
            sg.set_session_uuid(entry.get("session_uuid"))
        try:
            self.fn(sg, self.logger, entry, self.args)
        except Exception as exc:
            self.logger.critical(
                "Error running callback %s on EventLogEntry %s", self.name, entry.get("id"), exc_info=True
            )
            if plugin.host.policy == "retry" and self.stop_on_error:
                raise
            if self.stop_on_error:
                plugin.deactivate(event, entry, f"{self.name}: {type(exc).__name__}: {exc}")


class LegacyPlugin:
    """One shotgunEvents plugin file: its callbacks, logger, resume point and deactivation state."""

    def __init__(self, name: str, path: Path, host: _Host, options: Mapping[str, Any]) -> None:
        self.name = name
        self.path = path
        self.host = host
        self.logger = logging.getLogger(f"plugin.{name}")
        self.callbacks: list[_Callback] = []
        self.emails: list[str] | None = None
        self.deactivated_at: int | None = None
        resume = dict((options.get("resume") or {}).get(path.stem) or {})
        self.resume_after = int(resume.get("after", 0))
        self.resume_backlog = {int(i) for i in resume.get("backlog", ())}
        self._local = threading.local()
        self._state_lock = threading.Lock()
        self.mtime_ns = path.stat().st_mtime_ns

    @property
    def state_key(self) -> str:
        return f"{STATE_PREFIX}{self.host.group}/{self.name}"

    def event_dict(self, event: Event) -> dict[str, Any]:
        """One dict per event, shared by the plugin's callbacks (and reused by the next plugins)."""
        cached = getattr(self._local, "pair", None)
        if cached is not None and cached[0] is event:
            return cached[1]  # type: ignore[no-any-return]
        entry = sg_event_dict(event, self.host.tz_cache)
        self._local.pair = (event, entry)
        return entry

    def already_done(self, entry: Mapping[str, Any]) -> bool:
        """Events the old daemon had already given this plugin (imported id file)."""
        if not self.resume_after:
            return False
        entry_id = int(entry.get("id") or 0)
        return entry_id <= self.resume_after and entry_id not in self.resume_backlog

    def deactivate(self, event: Event, entry: Mapping[str, Any], reason: str) -> None:
        with self._state_lock:
            if self.deactivated_at is not None:
                return
            self.deactivated_at = event.id or 0
        self.logger.critical(
            "plugin %s (%s) is deactivated after an error on EventLogEntry %s: %s. It resumes from that "
            "event when its file changes.",
            self.name,
            self.path,
            entry.get("id"),
            reason,
        )
        store = self.host.store
        if store is not None:
            state = {"deactivated_at": self.deactivated_at, "mtime_ns": self.mtime_ns, "reason": reason}
            store.append([], source=self.state_key, cursor=state)

    def restore_state(self) -> None:
        """Stay off if the file is unchanged since the failure; otherwise replay what was missed."""
        if not self.host.store_url:
            return
        from trackwire.store import open_store

        store = open_store(self.host.store_url)  # only for this check: most plugins never need it again
        try:
            self._restore_from(store)
        finally:
            store.close()

    def _restore_from(self, store: Any) -> None:
        state = store.get_cursor(self.state_key)
        if not state or state.get("deactivated_at") is None:
            return
        failed_at = int(state["deactivated_at"])
        if int(state.get("mtime_ns", -1)) == self.mtime_ns:
            self.deactivated_at = failed_at
            log.warning(
                "plugin %s stays deactivated (%s); change or touch %s to resume it",
                self.name,
                state.get("reason"),
                self.path,
            )
            return
        position = next((g.position for g in store.groups() if g.name == self.host.group), None)
        consumers = [f"{self.name}.{c.name}" for c in self.callbacks]
        if position is not None and position >= failed_at and consumers:
            count = store.replay_range(self.host.group, failed_at, position, consumers)
            log.warning(
                "plugin %s changed: reactivated, replaying %d events from log id %d", self.name, count, failed_at
            )
        store.append([], source=self.state_key, cursor={"deactivated_at": None, "mtime_ns": self.mtime_ns})

    def setup_logging(self) -> None:
        if self.host.log_dir:
            attach_file_handler(self.logger, Path(self.host.log_dir), self.name)

    def set_emails(self, emails: tuple[Any, ...]) -> None:
        if len(emails) == 1 and emails[0] is True:
            self.emails = list(self.host.emails.get("to") or [])
        elif (len(emails) == 1 and emails[0] is False) or not emails:
            self.emails = None
        else:
            self.emails = [str(e) for e in emails]
        for handler in list(self.logger.handlers):
            if isinstance(handler, RateLimitedEmailHandler):
                self.logger.removeHandler(handler)
        if self.emails and self.host.emails.get("enabled"):
            self.logger.addHandler(RateLimitedEmailHandler(self.host.emails, self.emails, self.name))


class Registrar:
    """The ``reg`` object ``registerCallbacks(reg)`` receives."""

    def __init__(self, plugin: LegacyPlugin) -> None:
        self._plugin = plugin

    @property
    def logger(self) -> logging.Logger:
        return self._plugin.logger

    def getLogger(self) -> logging.Logger:
        return self._plugin.logger

    def setEmails(self, *emails: Any) -> None:
        self._plugin.set_emails(emails)

    def registerCallback(
        self,
        sgScriptName: str,
        sgScriptKey: str,
        callback: Callable[..., Any],
        matchEvents: dict[str, Any] | None = None,
        args: Any = None,
        stopOnError: bool = True,
    ) -> None:
        plugin = self._plugin
        if not callable(callback):
            raise TypeError(f"registerCallback needs a callable callback, got {type(callback).__name__}")
        try:
            matcher = MatchEventsFilter.from_mapping(matchEvents)
        except TypeError as exc:
            raise TypeError(f"{plugin.path}: invalid matchEvents: {exc}") from exc
        base = getattr(callback, "__name__", None) or type(callback).__name__
        taken = {c.name for c in plugin.callbacks}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        plugin.callbacks.append(
            _Callback(
                plugin=plugin,
                name=name,
                script_name=sgScriptName,
                script_key=sgScriptKey,
                fn=callback,
                matcher=matcher,
                args=args,
                stop_on_error=bool(stopOnError),
                logger=logging.getLogger(f"{plugin.logger.name}.{name}"),
            )
        )


def load_plugin(name: str, path: Path, options: Mapping[str, Any]) -> LoadedPlugin:
    """Import a shotgunEvents plugin file and turn its callbacks into consumers."""
    host = _Host.from_options(options)
    plugin = LegacyPlugin(name, path, host, options)
    plugin.setup_logging()
    module = import_plugin(name, path)
    register = getattr(module, "registerCallbacks", None)
    if not callable(register):
        raise AttributeError(f"{path} has no registerCallbacks(reg) function")
    register(Registrar(plugin))
    plugin.restore_state()
    consumers = [
        LoadedConsumer(f"{name}.{c.name}", c.matcher, c.invoke, stop_on_error=c.stop_on_error) for c in plugin.callbacks
    ]
    return LoadedPlugin(name, path, consumers)
