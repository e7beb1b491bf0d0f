"""The shared tail of the log: read new events once, hand them to every group from memory.

Groups that fall behind the retained window read the store directly (with their type filter, so a
group interested in one rare type skips the rest through the index).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging

from trackwire.ports import LogRecord, Store

__all__ = ["LogTail"]

log = logging.getLogger("trackwire.tail")


class LogTail:
    def __init__(
        self, store: Store, *, start: int, retain: int = 100_000, batch: int = 5_000, poll: float = 0.005
    ) -> None:
        self.store = store
        self.last = start
        self.retain = retain
        self.batch = batch
        self.poll = poll
        self._ids: list[int] = []
        self._records: list[LogRecord] = []
        self._changed = asyncio.Condition()
        self._nudge = asyncio.Event()

    def nudge(self) -> None:
        """Something was appended in this process: look now rather than at the next poll."""
        self._nudge.set()

    @property
    def first_retained(self) -> int:
        return self._ids[0] if self._ids else self.last + 1

    async def run(self, stop: asyncio.Event) -> None:
        version = -1
        data_version = getattr(self.store, "data_version", None)
        while not stop.is_set():
            current = data_version() if data_version is not None else version + 1
            if current != version:
                version = current
                records = await asyncio.to_thread(self.store.read_after, self.last, self.batch)
                if records:
                    self._add(records)
                    if len(records) == self.batch:
                        version = -1  # more to read: go round again at once
                    async with self._changed:
                        self._changed.notify_all()
                    continue
            self._nudge.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), self.poll)

    def _add(self, records: list[LogRecord]) -> None:
        self._ids.extend(r.id for r in records)
        self._records.extend(records)
        self.last = records[-1].id
        excess = len(self._ids) - self.retain
        if excess > self.retain // 4:
            del self._ids[:excess]
            del self._records[:excess]

    async def read(self, after: int, limit: int, types: list[str] | None) -> tuple[list[LogRecord], int]:
        """Events after ``after`` (at most ``limit``) and the position they cover up to.

        The position can be past the last record returned when a type-filtered read found nothing more.
        """
        if self._ids and after + 1 >= self._ids[0]:
            start = bisect.bisect_right(self._ids, after)
            chunk = self._records[start : start + limit]
            covered = chunk[-1].id if len(chunk) == limit else self.last
            return chunk, max(covered, after)
        if not self._ids and after >= self.last:
            return [], after
        # Behind the retained window: read the store itself.
        ceiling = self.first_retained - 1
        records = await asyncio.to_thread(self.store.read_after, after, limit, types)
        records = [r for r in records if r.id <= ceiling]
        covered = records[-1].id if len(records) == limit else ceiling
        return records, max(covered, after)

    async def wait(self, after: int, timeout: float) -> None:
        """Return when events after ``after`` may be available, or after ``timeout``."""
        if self.last > after:
            return
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self.last > after), timeout)
