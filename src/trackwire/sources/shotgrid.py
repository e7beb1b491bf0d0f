"""The ShotGrid source: polls ``EventLogEntry`` by id with the real ``shotgun_api3`` client.

Each read asks for ids after the newest one seen (never re-reading a window), so events keep
flowing while gap ids are awaited in a separate lookup (:mod:`trackwire.core.sg_backlog`). Every
batch is appended together with the cursor (newest id + awaited ids) in one transaction.

Connection problems are retried with capped, jittered exponential backoff; an outage is logged
once with its cause and once when it ends. Blocking calls run in daemon threads, so a stop request
is honoured at once even while a call hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from trackwire.config import ShotgridSettings
from trackwire.core.backoff import Backoff
from trackwire.core.event import Event, Ref
from trackwire.core.sg_backlog import Backlog, id_ranges
from trackwire.ports import Store

__all__ = ["EVENT_FIELDS", "ShotgridSource", "event_from_entry"]

log = logging.getLogger("trackwire.source.shotgrid")

# The fields shotgunEvents reads, so plugins get exactly the dict they used to get.
EVENT_FIELDS = [
    "id",
    "event_type",
    "attribute_name",
    "meta",
    "entity",
    "user",
    "project",
    "session_uuid",
    "created_at",
]
_ASC = [{"field_name": "id", "direction": "asc"}]
_DESC = [{"field_name": "id", "direction": "desc"}]

T = TypeVar("T")


def _ref(value: Any) -> Ref | None:
    if isinstance(value, dict) and "type" in value and "id" in value:
        return Ref(str(value["type"]), value["id"], value.get("name"))
    return None


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return time.time()


def event_from_entry(entry: dict[str, Any], source: str) -> Event:
    """The log event for one ``EventLogEntry`` dict, kept whole in ``data``."""
    raw_meta = entry.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    created = entry.get("created_at")
    occurred = created.astimezone(UTC) if isinstance(created, datetime) and created.tzinfo else datetime.now(UTC)
    return Event(
        source=source,
        source_id=str(entry["id"]),
        type=str(entry.get("event_type") or "EventLogEntry"),
        entity=_ref(entry.get("entity")),
        project=_ref(entry.get("project")),
        user=_ref(entry.get("user")),
        attribute=entry.get("attribute_name"),
        old=meta.get("old_value"),
        new=meta.get("new_value"),
        occurred=occurred,
        data=entry,
    )


def _close_quietly(sg: Any) -> None:
    with contextlib.suppress(Exception):
        sg.close()


class _NotStored(Exception):
    """The store refused a batch: nothing of it was kept, and the same ids are read again."""


async def _in_thread(fn: Callable[[], T]) -> T:
    """Run a blocking call in a daemon thread: a hung call never keeps the process from exiting."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def target() -> None:
        try:
            value = fn()
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, None, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=target, name="shotgrid-call", daemon=True).start()
    return await future


class ShotgridSource:
    """Turns a site's ``EventLogEntry`` rows into events (source name ``settings.source``)."""

    def __init__(
        self,
        settings: ShotgridSettings,
        *,
        connect: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.name = settings.source
        self._connect = connect or self._real_connection
        self._clock = clock
        # Connections, each used by one call at a time (shotgun-api3's are not thread-safe): a call takes an
        # idle one or makes one, and gives it back unless the source closed its generation meanwhile (an outage,
        # a stop) -- then it closes it, so a call abandoned by a stop never leaves a socket open.
        self._idle: list[Any] = []
        self._generation = 0
        self._pool_lock = threading.Lock()
        self._backoff = Backoff(settings.retry_base, settings.retry_cap)
        self._rng = random.Random()
        self._outage_since: float | None = None
        self._outage_cause: str | None = None
        self._last_backlog_check = 0.0
        self.backlog: Backlog | None = None
        self.reads = 0
        self._prefetch: tuple[int, asyncio.Future[list[dict[str, Any]]]] | None = None

    def _real_connection(self) -> Any:
        from trackwire.sources.shotgrid_client import PollerShotgun

        settings = self.settings
        if not settings.site or not settings.script_name or settings.script_key is None:
            raise ValueError("shotgrid.site, shotgrid.script_name and shotgrid.script_key are all needed")
        sg = PollerShotgun(
            settings.site,
            settings.script_name,
            settings.script_key.get_secret_value(),
            connect=False,
            http_proxy=settings.proxy or None,
        )
        sg.config.timeout_secs = settings.timeout
        sg.config.max_rpc_attempts = 1  # retries are ours: backoff, jitter, and a stop that is honoured
        return sg

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, store: Store, stop: asyncio.Event, appended: asyncio.Event) -> None:
        cursor = await asyncio.to_thread(store.get_cursor, self.name)
        if cursor:
            self.backlog = Backlog.from_cursor(
                cursor, timeout=self.settings.backlog_timeout, max_missing=self.settings.max_backlog
            )
            log.info(
                "ShotGrid source %s resumes after EventLogEntry %d (%d gap ids awaited)",
                self.name,
                self.backlog.last_id,
                len(self.backlog.missing),
            )
        try:
            await self._loop(store, stop, appended)
        finally:
            self._close()

    def _close(self) -> None:
        with self._pool_lock:
            self._generation += 1
            idle, self._idle = self._idle, []
        for sg in idle:
            _close_quietly(sg)

    async def _call(self, fn: Callable[[Any], T]) -> T:
        """One ShotGrid call in its own thread, on a connection no other call is using."""

        def call() -> T:
            with self._pool_lock:
                generation = self._generation
                sg = self._idle.pop() if self._idle else None
            if sg is None:
                sg = self._connect()
            try:
                value = fn(sg)
            except BaseException:
                _close_quietly(sg)  # its state after a failed call is unknown
                raise
            with self._pool_lock:
                if generation == self._generation:
                    self._idle.append(sg)
                    return value
            _close_quietly(sg)
            return value

        return await _in_thread(call)

    async def _loop(self, store: Store, stop: asyncio.Event, appended: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                finished, full = await self._unless_stopped(self._step(store, appended), stop)
                if not finished:
                    return
            except _NotStored as exc:
                failures += 1
                delay = self._backoff.delay(failures, self._rng)
                log.error("%s; it is read again in %.1f s", exc, delay)
                await self._wait(stop, delay)
                continue
            except Exception as exc:
                failures += 1
                delay = self._backoff.delay(failures, self._rng)
                self._note_outage(exc, delay)
                await self._wait(stop, delay)
                continue
            if failures:
                self._note_recovery()
                failures = 0
            if not full:
                await self._wait(stop, self.settings.fetch_interval)

    async def _step(self, store: Store, appended: asyncio.Event) -> bool:
        if self.backlog is None:
            self.backlog = await self._first_position(store)
        return await self._poll(store, appended)

    async def _unless_stopped(self, work: Awaitable[bool], stop: asyncio.Event) -> tuple[bool, bool]:
        """Race ``work`` against ``stop``: a hung ShotGrid call never delays a stop."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return False, False
        return True, task.result()

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    def _note_outage(self, exc: Exception, delay: float) -> None:
        cause = f"{type(exc).__name__}: {exc}"
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._outage_cause = cause
            log.error("ShotGrid is unreachable (%s); retrying with backoff (next try in %.1f s)", cause, delay)
        elif cause != self._outage_cause:
            self._outage_cause = cause
            log.warning("ShotGrid still unreachable, now: %s", cause)
        self._prefetch = None
        self._close()  # a fresh connection next time

    def _note_recovery(self) -> None:
        if self._outage_since is not None:
            log.warning("ShotGrid is reachable again after %.1f s", time.monotonic() - self._outage_since)
        self._outage_since = None
        self._outage_cause = None

    async def _first_position(self, store: Store) -> Backlog:
        settings = self.settings
        if settings.start == "now":
            newest = await self._call(
                lambda sg: sg.find_one("EventLogEntry", [], ["id"], order=_DESC),
            )
            last = int(newest["id"]) if newest else 0
            log.info("ShotGrid source %s starts now, after EventLogEntry %d", self.name, last)
        else:
            last = int(settings.start) - 1
            log.info("ShotGrid source %s starts at EventLogEntry %d", self.name, last + 1)
        backlog = Backlog(last, timeout=settings.backlog_timeout, max_missing=settings.max_backlog)
        await asyncio.to_thread(store.append, [], source=self.name, cursor=backlog.to_cursor())
        return backlog

    async def _poll(self, store: Store, appended: asyncio.Event) -> bool:
        """One read after the newest id, one lookup of awaited ids when due; True if the read was full.

        If anything fails before the batch is stored (the lookup, the append), the backlog is put back
        as it was before the read: the next poll reads the same ids again instead of skipping them.
        """
        backlog = self.backlog
        assert backlog is not None
        prefetched, self._prefetch = self._prefetch, None
        if prefetched is not None and prefetched[0] == backlog.last_id:
            entries = await prefetched[1]
        else:
            entries = await self._read_after(backlog.last_id)
        last_id, missing = backlog.last_id, dict(backlog.missing)
        try:
            return await self._take(store, appended, backlog, entries)
        except BaseException as exc:
            backlog.last_id, backlog.missing = last_id, missing
            ahead, self._prefetch = self._prefetch, None
            if ahead is not None:
                if isinstance(exc, asyncio.CancelledError):
                    ahead[1].cancel()  # stopping: the connection is closed on the way out
                else:  # let the read running ahead finish: a connection is never used by two calls at once
                    with contextlib.suppress(Exception):
                        await ahead[1]
            raise

    async def _take(
        self, store: Store, appended: asyncio.Event, backlog: Backlog, entries: list[dict[str, Any]]
    ) -> bool:
        settings = self.settings
        now = self._clock()
        entries.sort(key=lambda e: int(e["id"]))
        observed = backlog.observe([(int(e["id"]), _epoch(e.get("created_at"))) for e in entries], now)
        if observed.lost:
            log.warning(
                "EventLogEntry ids %s are missing and older than the backlog timeout: they never happened",
                id_ranges(observed.lost),
            )
        late: list[dict[str, Any]] = []
        monotonic = time.monotonic()
        if backlog.missing and monotonic - self._last_backlog_check >= settings.fetch_interval:
            self._last_backlog_check = monotonic
            wanted = backlog.wanted(500)
            late = await self._call(
                lambda sg: sg.find("EventLogEntry", [["id", "in", wanted]], EVENT_FIELDS, order=_ASC, limit=len(wanted))
            )
            accepted = set(backlog.found(int(e["id"]) for e in late))
            late = [e for e in late if int(e["id"]) in accepted]
            if late:
                log.info("gap ids %s arrived late and are delivered", id_ranges(accepted))
        expired = backlog.expire(now)
        if expired:
            log.warning(
                "Timeout elapsed on backlog EventLogEntry ids %s (waited %.0f s): they are not delivered",
                id_ranges(expired),
                settings.backlog_timeout,
            )
        full = len(entries) >= settings.batch_size
        if full:  # catching up: the next read runs while this batch is converted and appended
            self._prefetch = (backlog.last_id, asyncio.ensure_future(self._read_after(backlog.last_id)))
            self._prefetch[1].add_done_callback(lambda f: f.cancelled() or f.exception())
        found = entries + late
        if found or expired or observed.waiting or observed.lost:
            try:
                await asyncio.to_thread(self._append, store, found, backlog.to_cursor())
            except Exception as exc:
                raise _NotStored(
                    f"the store could not take EventLogEntry ids {id_ranges(int(e['id']) for e in found) or '-'}"
                    f" ({type(exc).__name__}: {exc})"
                ) from exc
            if found:
                appended.set()
        return full

    def _append(self, store: Store, entries: list[dict[str, Any]], cursor: dict[str, Any]) -> None:
        store.append([event_from_entry(e, self.name) for e in entries], source=self.name, cursor=cursor)

    async def _read_after(self, after: int) -> list[dict[str, Any]]:
        settings = self.settings
        entries: list[dict[str, Any]] = await self._call(
            lambda sg: sg.find(
                "EventLogEntry",
                [["id", "greater_than", after]],
                EVENT_FIELDS,
                order=_ASC,
                limit=settings.batch_size,
            )
        )
        self.reads += 1
        return entries
