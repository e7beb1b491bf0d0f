"""The Kitsu plugin API: handlers get the event and a ready, logged-in ``gazu`` client.

    from trackwire.plugins.kitsu import Kitsu, KitsuCall

    kitsu = Kitsu()

    @kitsu.on("task:status-changed")
    def on_status(event, k: KitsuCall) -> None:
        task = k.entity()                                   # the Task the event names, fetched once
        status = k.get("TaskStatus", event.new, max_age=300)  # cached for five minutes
        k.gazu.task.add_comment(task, status, "seen", client=k.client)

Kitsu events carry ids only, so ``k.entity()`` fetches the record the event names (cached for the
event: several handlers of one event share one request) and ``k.get(type, id, max_age=...)`` any
other record. ``k.client`` is a ``gazu`` client logged in with, in order: the ``Kitsu(...)``
arguments, the plugin's options (``url``, ``email``, ``password``, ``token``, or the same keys under
``kitsu``), then ``KITSU_URL`` / ``KITSU_EMAIL`` / ``KITSU_PASSWORD`` / ``KITSU_TOKEN`` in the worker's
environment. The worker process does not see the daemon's settings: configure the plugin's options.
The ``Kitsu`` object belongs to the plugin module, so a reload starts with a fresh client and cache.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from trackwire.core.event import Event, Ref
from trackwire.errors import Fail
from trackwire.plugins.api import Context, on

__all__ = ["EntityCache", "Kitsu", "KitsuCall", "model_path"]

F = TypeVar("F", bound=Callable[..., Any])

# zou's REST collection for an entity type, where it is not the plural of the kebab-cased name.
_PATHS = {"TaskStatus": "task-status", "Person": "persons", "Entity": "entities", "EntityType": "entity-types"}


def model_path(entity_type: str) -> str:
    """``Task`` -> ``tasks``, ``PreviewFile`` -> ``preview-files``, ``TaskStatus`` -> ``task-status``."""
    if entity_type in _PATHS:
        return _PATHS[entity_type]
    kebab = "".join(f"-{c.lower()}" if c.isupper() else c for c in entity_type).lstrip("-")
    return kebab + "s"


@dataclass
class EntityCache:
    """Fetched records by (type, id): reused within one event, or while younger than ``max_age``."""

    clock: Callable[[], float] = time.monotonic
    max_entries: int = 10_000
    _entries: dict[tuple[str, str], tuple[Any, float, int | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[str, str], fetch: Callable[[], Any], *, event_id: int | None, max_age: float = 0.0) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None:
            value, fetched, seen_by = hit
            if (event_id is not None and seen_by == event_id) or (max_age > 0 and now - fetched <= max_age):
                return value
        value = fetch()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (value, now, event_id)
        return value

    def forget(self, key: tuple[str, str] | None = None) -> None:
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)


@dataclass
class KitsuCall:
    """What a Kitsu handler gets besides the event: the gazu module, a logged-in client, lookups."""

    event: Event
    ctx: Context
    client: Any
    cache: EntityCache

    @property
    def gazu(self) -> Any:
        import gazu

        return gazu

    @property
    def options(self) -> Mapping[str, Any]:
        return self.ctx.options

    @property
    def log(self) -> Any:
        return self.ctx.log

    def get(self, entity_type: str, entity_id: str, *, max_age: float = 0.0) -> dict[str, Any]:
        """The record ``entity_type:entity_id`` (``GET /data/<collection>/<id>``), cached as described."""
        import gazu

        def fetch() -> dict[str, Any]:
            record: dict[str, Any] = gazu.client.fetch_one(model_path(entity_type), entity_id, client=self.client)
            return record

        value: dict[str, Any] = self.cache.get(
            (entity_type, str(entity_id)), fetch, event_id=self.event.id, max_age=max_age
        )
        return value

    def entity(self, *, max_age: float = 0.0) -> dict[str, Any]:
        """The record the event names (``Task:<task_id>`` for ``task:status-changed``)."""
        ref = self.event.entity
        if ref is None:
            raise Fail(f"event {self.event.type} names no entity")
        return self.get(ref.type, str(ref.id), max_age=max_age)

    def ref(self, value: Ref | str) -> dict[str, Any]:
        ref = Ref.from_json(value)
        assert ref is not None
        return self.get(ref.type, str(ref.id))


def _setting(name: str, explicit: str | None, options: Mapping[str, Any]) -> str | None:
    nested = options.get("kitsu")
    for source in (explicit, options.get(name), nested.get(name) if isinstance(nested, Mapping) else None):
        if source:
            return str(source)
    return os.environ.get(f"KITSU_{name.upper()}") or None


class Kitsu:
    """A plugin's connection to one Kitsu: ``@kitsu.on(...)`` registers handlers ``fn(event, k)``."""

    def __init__(
        self,
        url: str | None = None,
        *,
        email: str | None = None,
        password: str | None = None,
        token: str | None = None,
        cache: EntityCache | None = None,
    ) -> None:
        self._url, self._email, self._password, self._token = url, email, password, token
        self.cache = cache or EntityCache()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client_for(self, options: Mapping[str, Any]) -> Any:
        """A logged-in gazu client for these options, made once and reused (tokens refresh themselves)."""
        import gazu

        url = _setting("url", self._url, options)
        if url is None:
            raise Fail("no Kitsu URL: set the plugin option 'url' or KITSU_URL")
        token = _setting("token", self._token, options)
        email = _setting("email", self._email, options)
        identity = (url, email or "token")
        with self._lock:
            client = self._clients.get(identity)
            if client is not None:
                return client
            client = gazu.client.create_client(url, use_refresh_token=True)
            if email:
                password = _setting("password", self._password, options)
                if password is None:
                    raise Fail(f"no Kitsu password for {email}: set the plugin option or KITSU_PASSWORD")
                gazu.log_in(email, password, client=client)  # type: ignore[no-untyped-call]
            elif token:
                client.tokens = {"access_token": token}
            else:
                raise Fail("no Kitsu credentials: set the plugin options email/password or token, or KITSU_*")
            self._clients[identity] = client
            return client

    def on(self, *types: str, **filters: Any) -> Callable[[F], F]:
        """Like :func:`trackwire.on`, for a handler ``fn(event, k: KitsuCall)``."""

        def decorate(fn: F) -> F:
            @functools.wraps(fn)
            def handler(event: Event, ctx: Context) -> Any:
                call = KitsuCall(event, ctx, self.client_for(ctx.options), self.cache)
                return fn(event, call)

            registered: F = on(*types, **filters)(handler)  # type: ignore[assignment]
            return registered

        return decorate
