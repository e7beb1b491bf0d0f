"""Run ftrack event plugins unchanged: ``register(session, **kw)`` and ``session.event_hub.subscribe(...)``.

An ftrack plugin file is imported in its group's worker process and its ``register`` is called with
an ``ftrack_api.Session`` (a real one connected over HTTP when ``[ftrack]`` names a server, so
``session.query`` works; otherwise, or with ``plugin_session = "offline"``, an offline shell, which passes the customary
``isinstance(session, ftrack_api.Session)`` check but has no server behind it). Its ``event_hub`` is
a real ``ftrack_api`` ``EventHub`` that never subscribes at the server: what it records is turned into
consumers, driven from the durable log instead of the live socket:

- each ``subscribe(expression, callback, subscriber=None, priority=100)`` becomes one consumer whose
  matcher is the expression (:mod:`trackwire.core.ftrack_expr`), tried against the original ftrack
  event kept in ``data["ftrack"]`` (once per ftrack event, not once per entity change);
- all the callbacks of an ordering group (every ftrack plugin file, in the ``ftrack`` group) run in
  priority order, lower first, as ftrack's hub sorts the subscribers of a session across its plugins
  (ties: file order, then subscription order; see :func:`trackwire.plugins.loader.run_order`), and
  they receive one shared ``ftrack_api.event.base.Event``, so ``event.stop()`` stops the later ones
  in every file, as in ftrack;
- a callback's non-``None`` return value is a reply: published to the ftrack server as
  ``ftrack.meta.reply`` (``target=id=<source.id>``, ``in_reply_to_event``) when a server is configured,
  and always appended to the log as an ``ftrack.meta.reply`` event following the one it answers.

Events that did not come from ftrack (``trackwire.ftrack.gap`` for example) are offered to the
expressions as ``{"topic": type, "data": data, "source": {...}}``, so a resync plugin written against
the ftrack API can subscribe to ``topic=trackwire.ftrack.gap``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackwire.core.event import Event
from trackwire.core.ftrack_expr import FtrackMatcher, ftrack_candidate, parse
from trackwire.plugins.api import Context
from trackwire.plugins.loader import LoadedConsumer, LoadedPlugin, import_plugin

__all__ = ["REPLY_TYPE", "load_plugin", "plugin_session"]

log = logging.getLogger("trackwire.ftrack")

REPLY_TYPE = "ftrack.meta.reply"
_EVENT_KEYS = ("id", "data", "sent", "source", "target", "in_reply_to_event")
_OFFLINE_URL = "https://ftrack.invalid"


@dataclass(frozen=True)
class _Server:
    url: str | None
    user: str | None
    key: str | None
    offline: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> _Server:
        ftrack = dict(dict(options.get("_trackwire") or {}).get("ftrack") or {})
        return cls(ftrack.get("server_url"), ftrack.get("api_user"), ftrack.get("api_key"), bool(ftrack.get("offline")))


def _log_hub_class() -> type:
    import ftrack_api.event.hub

    class LogHub(ftrack_api.event.hub.EventHub):  # type: ignore[misc]
        """Records subscriptions locally; never tells a server (the daemon's source listens instead)."""

        def _notify_server_about_subscriber(self, subscriber: Any) -> None:
            return None

    return LogHub


def plugin_session(server: _Server) -> Any:
    """The ``session`` given to ``register``: real with a server, an offline ``Session`` shell without."""
    import ftrack_api

    if server.url and not server.offline:
        session = ftrack_api.Session(
            server_url=server.url,
            api_key=server.key,
            api_user=server.user,
            auto_connect_event_hub=False,
            plugin_paths=[],
        )
    else:
        session = ftrack_api.Session.__new__(ftrack_api.Session)
        session._closed = True  # nothing to query: any API call fails loudly instead of hanging
    session._event_hub = _log_hub_class()(server.url or _OFFLINE_URL, server.user or "trackwire", server.key or "")
    return session


class _Replies:
    """Publishes callback replies to the ftrack server over a hub of its own (connected on first use)."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self._hub: Any = None
        self._lock = threading.Lock()

    def publish(self, source_event: Any, data: Any, subscriber: Mapping[str, Any]) -> None:
        if not self.server.url:
            return
        with self._lock:
            if self._hub is None or not self._hub.connected:
                import ftrack_api.event.hub

                self._hub = ftrack_api.event.hub.EventHub(self.server.url, self.server.user, self.server.key)
                self._hub.connect()
            self._hub.publish_reply(source_event, data=data, source=dict(subscriber))


class _Shared:
    """The ftrack Event the callbacks of a worker process share for one log event (per worker thread).

    One instance per process (:data:`_SHARED`), so callbacks from different plugin files of a group get
    the same object and a ``stop()`` in one file is seen by the next.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def event_for(self, event: Event) -> Any:
        cached = getattr(self._local, "pair", None)
        if cached is not None and cached[0] is event:
            return cached[1]
        import ftrack_api.event.base

        raw = ftrack_candidate(event)
        fields = {k: raw[k] for k in _EVENT_KEYS if k in raw}
        fevent = ftrack_api.event.base.Event(str(raw.get("topic") or event.type), **fields)
        self._local.pair = (event, fevent)
        return fevent


_SHARED = _Shared()


def _consumer(
    plugin: str, subscriber: Any, order: int, shared: _Shared, replies: _Replies
) -> tuple[str, Callable[[Event, Context], Any]]:
    callback = subscriber.callback
    metadata = dict(subscriber.metadata)
    named = getattr(callback, "func", callback)  # functools.partial(handler, session) is the usual way
    name = f"{getattr(named, '__name__', 'callback')}@{subscriber.priority}#{order}"

    def invoke(event: Event, ctx: Context) -> None:
        fevent = shared.event_for(event)
        if fevent.is_stopped():
            return
        response = callback(fevent)
        if response is None:
            return
        try:
            replies.publish(fevent, response, metadata)
        except Exception:
            ctx.log.exception("reply of %s to ftrack event %s could not be published", name, fevent.get("id"))
        reply = {"in_reply_to_event": fevent.get("id"), "subscriber": metadata, "data": response}
        try:
            ctx.emit(REPLY_TYPE, data=reply, key=event.ordering_key)
        except RuntimeError:
            ctx.log.info("reply of %s (not recorded, no store): %r", name, response)

    return name, invoke


def load_plugin(name: str, path: Path, options: Mapping[str, Any]) -> LoadedPlugin:
    """Import an ftrack plugin file, call its ``register(session)``, and turn its subscriptions into consumers."""
    server = _Server.from_options(options)
    module = import_plugin(name, path)
    register = getattr(module, "register", None)
    if not callable(register):
        raise AttributeError(f"{path} has no register(session, **kw) function")
    session = plugin_session(server)
    register(session, **{k: v for k, v in options.items() if not k.startswith("_")})
    subscribers = sorted(enumerate(session.event_hub._subscribers), key=lambda pair: (pair[1].priority, pair[0]))
    replies = _Replies(server)
    consumers: list[LoadedConsumer] = []
    for order, subscriber in subscribers:
        expression = parse(str(subscriber.subscription))
        consumer_name, invoke = _consumer(name, subscriber, order, _SHARED, replies)
        matcher = FtrackMatcher((expression,))
        priority = float(subscriber.priority)
        consumers.append(LoadedConsumer(f"{name}.{consumer_name}", matcher, invoke, priority=priority))
    if not consumers:
        log.warning("ftrack plugin %s (%s) subscribed to nothing", name, path)
    return LoadedPlugin(name, path, consumers)
