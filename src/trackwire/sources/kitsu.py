"""The Kitsu (zou) source: polls zou's event log and appends every event exactly once.

Each poll reads ``GET /data/events/last`` after ``high_water - overlap``, pages back with
``cursor_event_id`` until a short page, keeps the ids it has not stored yet (see
:mod:`trackwire.core.kitsu_cursor`) and appends them, oldest first, together with the new cursor in
one transaction. The Kitsu event id is the ``source_id``, so a poll repeated after a crash stores
nothing twice. The socket.io event stream, when enabled, only makes the next poll happen at once:
its messages carry no id and are published before zou saves the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from trackwire.config import KitsuSettings
from trackwire.core.backoff import Backoff
from trackwire.core.event import Event, Ref
from trackwire.core.kitsu_cursor import KitsuCursor, next_page, parse_second
from trackwire.errors import ConfigError, SourceError
from trackwire.ports import Store

__all__ = ["KitsuAPI", "KitsuCredentials", "KitsuSource", "entity_type_name", "load_credentials", "to_event"]

log = logging.getLogger("trackwire.sources.kitsu")


def entity_type_name(kind: str) -> str:
    """zou's object name as an entity type: ``task`` -> ``Task``, ``preview-file`` -> ``PreviewFile``."""
    return "".join(part.capitalize() for part in kind.replace("_", "-").split("-"))


def to_event(record: Mapping[str, Any], source: str) -> Event:
    """One zou event record as a Trackwire event; ``data`` keeps the record untouched.

    ``task:status-changed`` -> entity ``Task:<task_id>``, attribute ``task_status_id``, old/new the
    previous and new status ids. Other ``<object>:<action>`` names name ``<Object>:<object_id>``.
    """
    name = str(record.get("name") or "")
    data: Mapping[str, Any] = record.get("data") or {}
    kind = name.partition(":")[0]
    key = kind.replace("-", "_") + "_id"
    entity: Ref | None = None
    if data.get(key):
        entity = Ref(entity_type_name(kind), str(data[key]))
    elif kind == "project" and (record.get("project_id") or data.get("project_id")):
        entity = Ref("Project", str(record.get("project_id") or data.get("project_id")))
    project_id = record.get("project_id") or data.get("project_id")
    user_id = record.get("user_id")
    attribute = old = new = None
    if name == "task:status-changed":
        attribute, old, new = "task_status_id", data.get("previous_task_status_id"), data.get("new_task_status_id")
    occurred = parse_second(str(record["created_at"])).replace(tzinfo=UTC)
    return Event(
        source=source,
        source_id=str(record["id"]),
        type=name,
        entity=entity,
        project=Ref("Project", str(project_id)) if project_id else None,
        user=Ref("Person", str(user_id)) if user_id else None,
        attribute=attribute,
        old=old,
        new=new,
        occurred=occurred,
        data=dict(record),
    )


@dataclass(frozen=True)
class KitsuCredentials:
    """A bot token, or an email and password. ``repr`` never shows the secrets."""

    token: SecretStr | None = None
    email: str | None = None
    password: SecretStr | None = None


def _read_secrets_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            values[name.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def load_credentials(
    settings: KitsuSettings, base_dir: Path, environ: Mapping[str, str] | None = None
) -> KitsuCredentials:
    """Settings first, then ``KITSU_TOKEN`` / ``KITSU_EMAIL`` / ``KITSU_PASSWORD``, then the secrets file."""
    env = os.environ if environ is None else environ
    file_values: dict[str, str] = {}
    if settings.secrets_file is not None:
        path = settings.secrets_file if settings.secrets_file.is_absolute() else base_dir / settings.secrets_file
        try:
            file_values = _read_secrets_file(path)
        except OSError as exc:
            raise ConfigError(f"cannot read the Kitsu secrets file: {exc}", key="kitsu.secrets_file") from exc

    def pick(name: str) -> str | None:
        return env.get(name) or file_values.get(name) or None

    token = settings.token or (SecretStr(v) if (v := pick("KITSU_TOKEN")) else None)
    email = settings.email or pick("KITSU_EMAIL")
    password = settings.password or (SecretStr(v) if (v := pick("KITSU_PASSWORD")) else None)
    if token is None and not (email and password):
        raise ConfigError("Kitsu needs a bot token or an email and password", key="kitsu.token")
    return KitsuCredentials(token, email, password)


class KitsuAPI:
    """The few zou calls the source needs, over httpx. Logs in again when a token expires."""

    def __init__(self, url: str, credentials: KitsuCredentials, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.credentials = credentials
        self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self.access_token: str | None = credentials.token.get_secret_value() if credentials.token else None

    async def login(self) -> str:
        creds = self.credentials
        if creds.email is None or creds.password is None:
            if self.access_token is None:
                raise SourceError("no Kitsu token and no login")
            return self.access_token
        response = await self._client.post(
            "/auth/login", json={"email": creds.email, "password": creds.password.get_secret_value()}
        )
        if response.status_code != 200:
            raise SourceError(f"Kitsu login as {creds.email} failed: HTTP {response.status_code}")
        token = response.json().get("access_token")
        if not token:
            raise SourceError(f"Kitsu login as {creds.email} returned no token")
        self.access_token = str(token)
        return self.access_token

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        if self.access_token is None:
            await self.login()
        for attempt in (1, 2):
            response = await self._client.get(
                path, params=dict(params or {}), headers={"Authorization": f"Bearer {self.access_token}"}
            )
            if response.status_code in (401, 422) and attempt == 1 and self.credentials.email:
                await self.login()
                continue
            if response.status_code != 200:
                raise SourceError(f"GET {path}: HTTP {response.status_code} {response.text[:200]}")
            return response.json()
        raise SourceError(f"GET {path}: not authorised")

    async def events(self, after: str | None, cursor_event_id: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        if cursor_event_id is not None:
            params["cursor_event_id"] = cursor_event_id
        page = await self.get("/data/events/last", params)
        if not isinstance(page, list):
            raise SourceError(f"unexpected answer from /data/events/last: {str(page)[:200]}")
        return page

    async def all_events(self, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Every event after ``after``, newest first, paging back with ``cursor_event_id``."""
        fetched: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.events(after, cursor, limit)
            fetched.extend(page)
            cursor = next_page(page, limit)
            if cursor is None:
                return fetched

    async def aclose(self) -> None:
        await self._client.aclose()


class _WakeUp:
    """Listens to zou's socket.io stream in a thread and sets an asyncio event on every message."""

    def __init__(self, url: str, token: Callable[[], str | None], loop: asyncio.AbstractEventLoop) -> None:
        self.url = url
        self.token = token
        self.loop = loop
        self.signal = asyncio.Event()
        self._client: Any = None
        self._thread: threading.Thread | None = None

    def _poke(self, *_args: Any) -> None:
        self.loop.call_soon_threadsafe(self.signal.set)

    def _run(self) -> None:
        try:
            import socketio

            client = socketio.Client(reconnection=True, logger=False, engineio_logger=False)
            client.on("*", self._poke, namespace="/events")
            self._client = client
            client.connect(
                self.url,
                headers={"Authorization": f"Bearer {self.token()}"},
                namespaces=["/events"],
                wait_timeout=10,
            )
            log.info("kitsu: listening to the event stream at %s for wake-ups", self.url)
            client.wait()
        except Exception as exc:  # the stream is only an accelerator: polling goes on without it
            log.warning("kitsu: no event stream wake-ups (%s: %s); polling only", type(exc).__name__, exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kitsu-wakeup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.disconnect()


class KitsuSource:
    """Polls one zou server. Stoppable at any await; outages are retried with capped backoff."""

    def __init__(
        self,
        url: str,
        credentials: KitsuCredentials,
        *,
        name: str = "kitsu",
        poll_interval: float = 1.0,
        overlap: float = 10.0,
        page_size: int = 1000,
        event_url: str | None = None,
        wakeup: bool = False,
        start: str = "now",
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.credentials = credentials
        self.poll_interval = poll_interval
        self.overlap = overlap
        self.page_size = page_size
        self.event_url = event_url or url
        self.wakeup = wakeup
        self.start = start
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.polls = 0
        self.last_error: str | None = None

    @classmethod
    def from_settings(cls, settings: KitsuSettings, base_dir: Path) -> KitsuSource:
        return cls(
            settings.url,
            load_credentials(settings, base_dir),
            name=settings.name,
            poll_interval=settings.poll_interval,
            overlap=settings.overlap,
            page_size=settings.page_size,
            event_url=settings.event_url,
            wakeup=settings.wakeup,
            start=settings.start,
        )

    async def _initial(self, api: KitsuAPI, cursor: KitsuCursor) -> KitsuCursor:
        """Where a new source starts: "now" skips the log's past (but remembers the overlap's ids)."""
        if cursor.high_water is not None or self.start != "now":
            return cursor
        newest = await api.events(None, None, 1)
        if not newest:
            return cursor
        probe = KitsuCursor(parse_second(str(newest[0]["created_at"])), {})
        return cursor.absorb(await api.all_events(probe.after(self.overlap), self.page_size), self.overlap).cursor

    async def poll(self, api: KitsuAPI, store: Store, cursor: KitsuCursor) -> tuple[KitsuCursor, int]:
        """One complete poll: read, decide, append with the cursor. Returns the new cursor and the count."""
        fetched = await api.all_events(cursor.after(self.overlap), self.page_size)
        result = cursor.absorb(fetched, self.overlap)
        if result.cursor == cursor:
            return cursor, 0
        events = [to_event(record, self.name) for record in result.events]
        await asyncio.to_thread(store.append, events, source=self.name, cursor=result.cursor.to_json())
        return result.cursor, len(events)

    async def run(self, store: Store, stop: asyncio.Event, appended: asyncio.Event) -> None:
        api = KitsuAPI(self.url, self.credentials)
        wake: _WakeUp | None = None
        if self.wakeup:
            wake = _WakeUp(self.event_url, lambda: api.access_token, asyncio.get_running_loop())
        failures = 0
        woke = False
        cursor: KitsuCursor | None = None
        try:
            while not stop.is_set():
                try:
                    if cursor is None:
                        stored = KitsuCursor.from_json(await asyncio.to_thread(store.get_cursor, self.name))
                        cursor = await self._initial(api, stored)
                        if cursor != stored:
                            await asyncio.to_thread(store.append, [], source=self.name, cursor=cursor.to_json())
                        log.info("kitsu: polling %s from %s", self.url, cursor.high_water or "the beginning")
                        if wake is not None:
                            if api.access_token is None:
                                await api.login()
                            wake.start()
                    cursor, count = await self.poll(api, store, cursor)
                    self.polls += 1
                    if count:
                        appended.set()
                    if failures:
                        log.info("kitsu: %s answers again", self.url)
                    failures, self.last_error = 0, None
                    # zou publishes on the stream before it saves the row: a wake-up that found nothing
                    # gets one quick second look instead of waiting a whole poll interval.
                    delay = min(0.1, self.poll_interval) if woke and not count else self.poll_interval
                    woke = False
                except (httpx.HTTPError, SourceError, OSError) as exc:
                    failures += 1
                    delay = self.backoff.delay(failures)
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("kitsu: poll failed (%s); retrying in %.1f s", self.last_error, delay)
                woke = await self._wait(stop, delay, wake)
        finally:
            if wake is not None:
                wake.stop()
            await api.aclose()

    async def _wait(self, stop: asyncio.Event, delay: float, wake: _WakeUp | None) -> bool:
        """Wait ``delay`` seconds, or less if stopped or woken; True when woken by the event stream."""
        waiters = [asyncio.ensure_future(stop.wait())]
        if wake is not None:
            waiters.append(asyncio.ensure_future(wake.signal.wait()))
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if wake is not None and wake.signal.is_set():
            wake.signal.clear()
            return True
        return False
