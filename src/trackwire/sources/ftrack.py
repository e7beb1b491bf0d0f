"""The ftrack source: the live event hub, stored before anything acts on it.

ftrack's hub has no replay: an event published while nobody listens is gone. So this source does
nothing but listen (with the real ``ftrack_api`` ``EventHub``) and append: every hub event becomes
one Trackwire event per entity change in ``data.entities[]`` (``source_id`` is the ftrack event id,
suffixed ``#<n>`` for the n-th entity after the first, so a redelivered event is dropped by the
store's dedupe), with the whole original event kept in ``data["ftrack"]``. Plugins run later, from
the durable log.

What cannot be replayed is at least made visible: after an outage (the hub reconnected) and after
our own downtime (a restart), the source appends a ``trackwire.ftrack.gap`` event saying from when to
when events may have been missed. A resync plugin subscribes to that type and re-reads what it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from trackwire.config import FtrackSettings
from trackwire.core.event import Event, Ref
from trackwire.ports import Store

__all__ = ["GAP_TYPE", "FtrackSource", "events_from_ftrack", "gap_event"]

log = logging.getLogger(__name__)

GAP_TYPE = "trackwire.ftrack.gap"
_PROJECT_TYPES = ("show", "project")


def _occurred(raw: Mapping[str, Any]) -> datetime:
    sent = raw.get("sent")
    if isinstance(sent, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(sent)
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _user(raw: Mapping[str, Any]) -> Ref | None:
    source = raw.get("source") or {}
    user = source.get("user") if isinstance(source, Mapping) else None
    if isinstance(user, Mapping) and user.get("id"):
        return Ref("User", str(user["id"]), user.get("username"))
    data_user = (raw.get("data") or {}).get("user")
    if isinstance(data_user, Mapping) and data_user.get("userid"):
        return Ref("User", str(data_user["userid"]), data_user.get("name"))
    return None


def _project(entity: Mapping[str, Any]) -> Ref | None:
    if str(entity.get("entityType", "")).lower() in _PROJECT_TYPES and entity.get("entityId"):
        return Ref("Project", str(entity["entityId"]))
    for parent in entity.get("parents") or ():
        if isinstance(parent, Mapping) and str(parent.get("entityType", "")).lower() in _PROJECT_TYPES:
            return Ref("Project", str(parent["entityId"]))
    return None


def events_from_ftrack(raw: Mapping[str, Any], source: str) -> list[Event]:
    """One event per entity change of an ftrack hub event (one event when it names no entity)."""
    ftrack_id = str(raw.get("id") or "")
    if not ftrack_id:
        raise ValueError("an ftrack event without an id cannot be deduplicated")
    topic = str(raw.get("topic") or "ftrack.unknown")
    data = raw.get("data") if isinstance(raw.get("data"), Mapping) else {}
    entities = [e for e in (data or {}).get("entities") or () if isinstance(e, Mapping)]
    user, occurred, original = _user(raw), _occurred(raw), dict(raw)
    if not entities:
        return [Event(source, ftrack_id, topic, user=user, occurred=occurred, data={"ftrack": original, "index": 0})]
    out: list[Event] = []
    for index, entity in enumerate(entities):
        keys = [str(k) for k in entity.get("keys") or ()]
        changes = entity.get("changes") if isinstance(entity.get("changes"), Mapping) else {}
        attribute = keys[0] if len(keys) == 1 else None
        change = (changes or {}).get(attribute) if attribute else None
        ref = Ref(str(entity.get("entityType") or "unknown"), str(entity.get("entityId") or "")) if entity else None
        out.append(
            Event(
                source=source,
                source_id=ftrack_id if index == 0 else f"{ftrack_id}#{index}",
                type=topic,
                entity=ref,
                project=_project(entity),
                user=user,
                attribute=attribute,
                old=change.get("old") if isinstance(change, Mapping) else None,
                new=change.get("new") if isinstance(change, Mapping) else None,
                occurred=occurred,
                data={"ftrack": original, "index": index, "action": entity.get("action"), "keys": keys},
            )
        )
    return out


def gap_event(source: str, since: datetime, until: datetime, reason: str) -> Event:
    """The record of a window in which ftrack events may have been published and lost."""
    return Event(
        source=source,
        source_id=f"gap:{since.isoformat()}:{until.isoformat()}",
        type=GAP_TYPE,
        key=f"source:{source}",
        occurred=until,
        data={"since": since.isoformat(), "until": until.isoformat(), "reason": reason},
    )


HubFactory = Callable[[FtrackSettings], Any]
Handler = Callable[[Any], None]


def _real_hub(settings: FtrackSettings) -> Any:
    import ftrack_api.event.hub

    key = settings.api_key.get_secret_value() if settings.api_key else ""
    hub = ftrack_api.event.hub.EventHub(settings.server_url, settings.api_user, key)
    # The source reconnects itself (with backoff, recording the gap); the hub's own reconnect loop
    # would block its reader thread for minutes and race with ours.
    hub._auto_reconnect_attempts = 0
    return hub


class FtrackSource:
    """Listens on the ftrack event hub in a thread; appends in the daemon's loop before acknowledging."""

    def __init__(self, settings: FtrackSettings, hub_factory: HubFactory = _real_hub) -> None:
        self.settings = settings
        self.name = settings.source
        self._hub_factory = hub_factory
        self._halt = threading.Event()
        self.connected = threading.Event()
        self.hub: Any = None

    async def run(self, store: Store, stop: asyncio.Event, appended: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        cursor = await asyncio.to_thread(store.get_cursor, self.name) or {}
        state = {"last_seen": cursor.get("last_seen"), "down_since": cursor.get("last_seen")}

        def store_now(events: list[Event]) -> None:
            seen = datetime.now(UTC).isoformat()
            state["last_seen"] = seen
            store.append(events, source=self.name, cursor={"last_seen": seen})

        async def append(events: list[Event]) -> None:
            await asyncio.to_thread(store_now, events)
            appended.set()

        def deliver(events: list[Event]) -> None:  # runs in the hub's thread: blocks it until stored
            asyncio.run_coroutine_threadsafe(append(events), loop).result()

        def on_event(raw: Any) -> None:
            try:
                events = events_from_ftrack(dict(raw), self.name)
            except ValueError as exc:
                log.warning("ftrack event dropped: %s", exc)
                return
            deliver(events)

        def on_connected(_raw: Any) -> None:
            down_since = state.pop("down_since", None)
            self.connected.set()
            if down_since and self.settings.gap_event:
                now = datetime.now(UTC)
                log.warning("ftrack events between %s and %s may be lost (no replay)", down_since, now.isoformat())
                deliver([gap_event(self.name, datetime.fromisoformat(down_since), now, "disconnected")])

        thread = threading.Thread(target=self._listen, args=(on_event, on_connected, state), name="ftrack-hub")
        thread.start()
        try:
            await stop.wait()
        finally:
            self._halt.set()
            await asyncio.to_thread(thread.join, 10.0)

    def _listen(
        self, on_event: Callable[[Any], None], on_connected: Callable[[Any], None], state: dict[str, Any]
    ) -> None:
        hub = self.hub = self._hub_factory(self.settings)
        hub.subscribe(self.settings.subscription, on_event, priority=0)
        hub.subscribe("topic=ftrack.meta.connected", on_connected, priority=0)
        delay = 1.0
        while not self._halt.is_set():
            reader = getattr(hub, "_processor_thread", None)
            reading = reader is not None and reader.is_alive()
            if hub.connected and reading:
                hub.wait(0.2)
                continue
            if reading:  # the reader is still tearing the old connection down: let it finish first
                self._halt.wait(0.05)
                continue
            if self.connected.is_set():  # it was up: the outage starts now
                state.setdefault("down_since", datetime.now(UTC).isoformat())
                self.connected.clear()
            with contextlib.suppress(Exception):  # a stale or half-made connection must not block the next try
                hub.disconnect(unsubscribe=False, reconnect=True)
            try:
                hub.connect()
                delay = 1.0
            except Exception as exc:
                log.error("ftrack event hub unreachable (%s); next try in %.0f s", exc, delay)
                self._halt.wait(delay)
                delay = min(delay * 2, 60.0)
                continue
            hub.wait(0.2)
        with contextlib.suppress(Exception):
            hub.disconnect(unsubscribe=False)
