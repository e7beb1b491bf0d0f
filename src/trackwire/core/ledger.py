"""The delivery rules of one ordering group, as pure state: facts in, decisions out.

A group reads the log in id order. Each event it matches becomes an *item* that waits in its
ordering key's FIFO; only the head of a key's FIFO (and items queued right behind it, as one chain)
may run. A failed item stays at the head while it waits to retry, so later events of that key
wait too, while every other key carries on. After ``max_attempts`` the item is dead-lettered and
stops blocking its key.

Durable state is a *position* plus explicit rows: every matched event with an id at or below the
position is either finished or has a row (pending, running, retry or dead). The ledger decides
which rows to write at each checkpoint: items still unfinished after ``persist_after`` seconds (or
waiting to retry, or dead) get a row, so the position can move past them and a crash re-runs only
what was recently read or in flight.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from trackwire.core.backoff import Backoff

__all__ = ["Checkpoint", "DeliveryRow", "GroupLedger", "Item", "State"]


class State(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """What the store keeps for an unfinished (or dead) delivery of one event to one group."""

    event_id: int
    key: str
    state: State
    attempts: int
    retry_at: float | None
    consumers: tuple[str, ...]
    error: str | None = None
    traceback: str | None = None


@dataclass(slots=True)
class Item:
    event_id: int
    key: str
    consumers: tuple[str, ...]
    state: State = State.PENDING
    attempts: int = 0
    retry_at: float | None = None
    error: str | None = None
    traceback: str | None = None
    since: float = 0.0
    started: float = 0.0
    persisted: bool = False

    def row(self) -> DeliveryRow:
        return DeliveryRow(
            self.event_id,
            self.key,
            self.state,
            self.attempts,
            self.retry_at,
            self.consumers,
            self.error,
            self.traceback,
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A plan for one durable write: the new position, rows to write and rows to delete."""

    position: int
    upserts: tuple[DeliveryRow, ...]
    deletes: tuple[int, ...]

    @property
    def empty(self) -> bool:
        return not self.upserts and not self.deletes


@dataclass(frozen=True, slots=True)
class Failure:
    """Outcome of a failed attempt, as the ledger decided it."""

    dead: bool
    retry_at: float | None
    attempts: int


@dataclass
class GroupLedger:
    """The delivery state of one ordering group. Time is whatever numbers the caller passes as ``now``.

    Invariants (each tested in ``tests/unit/test_ledger.py`` and, against a model, in
    ``tests/unit/test_ledger_model.py``):

    1. **Per-key FIFO.** Items of one key are handed out in the order they entered the ledger (rows
       restored at start-up in id order, then events offered in id order). :meth:`take_ready` hands out
       the oldest runnable items across keys (so work finishes close to log order and the position
       follows), each key's as one chain of at most ``max_chain`` items that the worker runs in order;
       nothing of a key is handed out while an earlier chain of that key is running.
       So an item starts only when every earlier item of its key is finished (succeeded) or dead.
    2. **A retry blocks only its key.** A failed head stays at the head in ``retry`` state until
       :meth:`due` reaches its retry time; the items behind it wait, every other key carries on. The
       retry time is ``now`` + ``Retry(after=...)`` when given, else the jittered capped backoff.
    3. **Dead letters.** The ``max_attempts``-th failed attempt of an item, or any failure marked
       ``final``, makes the item dead: it leaves its key (freeing the items behind it) and gets a dead row
       at the next checkpoint. Nothing else makes an item dead.
    4. **Interruptions are free.** An item that was ``interrupted`` (its worker died, it was not run) is
       pending again, with the chain behind it, and no attempt is counted.
    5. **Durable coverage.** A checkpoint's ``position`` plus the rows in the store cover every
       unfinished item: every item at or below the position is finished or has a row (pending, running,
       retry or dead). The position never passes an unfinished item without a row, and never moves back.
       Items older than ``persist_after`` that are stalled (running for ``persist_after`` seconds, or
       queued behind such an item or a retry), retries and dead letters get rows, so a slow key never
       holds the position back; items merely queued for a free worker get none (the position catches up).
    6. **Writes in flight.** :meth:`committed` is called once a checkpoint is durable, and copes with
       what happened meanwhile: an item that finished gets its row deleted at the next checkpoint, one
       that changed gets its row rewritten, one that died gets its dead row (never a delete).
    7. **Restart.** A new ledger at the durable position, given the stored rows (:meth:`restore`) and then
       every event after the position (:meth:`offer`), holds every unfinished item once: a row written
       past the position wins over the re-read event (its attempts and retry time are kept) and a dead
       row is not run again. Only items that were unfinished, or finished after the position was
       written, run again.
    """

    position: int = 0
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    persist_after: float = 1.0
    max_chain: int = 64
    rng: random.Random = field(default_factory=random.Random)

    read_pos: int = field(init=False)
    items: dict[int, Item] = field(init=False, default_factory=dict)
    _keys: dict[str, deque[int]] = field(init=False, default_factory=dict)
    # keys whose head is pending, as a heap by head id (stale entries are skipped when popped)
    _ready: list[tuple[int, str]] = field(init=False, default_factory=list)
    _ready_set: set[str] = field(init=False, default_factory=set)
    _unpersisted: dict[int, None] = field(init=False, default_factory=dict)
    _dirty: set[int] = field(init=False, default_factory=set)
    _deletes: set[int] = field(init=False, default_factory=set)
    _dead: dict[int, Item] = field(init=False, default_factory=dict)
    _timers: list[tuple[float, int]] = field(init=False, default_factory=list)
    _settled: set[int] = field(init=False, default_factory=set)
    running_ids: set[int] = field(init=False, default_factory=set)
    _finished_max: int = field(init=False, default=0)  # the newest event finished so far

    def __post_init__(self) -> None:
        self.read_pos = self.position

    # -- facts coming in -------------------------------------------------------------------------

    def restore(self, rows: list[DeliveryRow], now: float) -> None:
        """Load a group's rows after a restart; call it before offering the events after ``position``.

        Unfinished rows become items again (a ``running`` row is pending: its run was cut short). A
        dead row stays dead: when the log is re-read past it, it is not offered again. A retry time
        further away than the backoff cap (a row written under another boot's monotonic clock) is
        brought back to the cap.
        """
        for row in sorted(rows, key=lambda r: r.event_id):
            if row.event_id in self.items:
                continue
            if row.state is State.DEAD:
                if row.event_id > self.read_pos:
                    self._settled.add(row.event_id)
                continue
            retry = row.state is State.RETRY and row.retry_at is not None
            self._add(
                Item(
                    row.event_id,
                    row.key,
                    row.consumers,
                    State.RETRY if retry else State.PENDING,
                    row.attempts,
                    min(row.retry_at, now + self.backoff.cap) if retry and row.retry_at is not None else None,
                    row.error,
                    row.traceback,
                    since=now,
                    persisted=True,
                )
            )

    def offer(self, event_id: int, key: str, consumers: tuple[str, ...], now: float) -> None:
        """An event read from the log, in id order; ``consumers`` empty means the group skips it."""
        if event_id <= self.read_pos:
            raise ValueError(f"event {event_id} offered at or behind read position {self.read_pos}")
        self.read_pos = event_id
        if event_id in self.items or event_id in self._settled:
            # restored from a row written past the position: the row (its attempts, its retry time) wins
            self._settled.discard(event_id)
            return
        if consumers:
            self._unpersisted[event_id] = None
            self._add(Item(event_id, key, consumers, since=now))

    def skip_to(self, read_pos: int) -> None:
        """Events up to ``read_pos`` were read and none matched."""
        self.read_pos = max(self.read_pos, read_pos)

    def adopt_row(self, event_id: int) -> None:
        """A row for an item we hold was written from outside (a replay): own it from now on."""
        item = self.items.get(event_id)
        if item is None:
            return
        item.persisted = True
        self._unpersisted.pop(event_id, None)
        self._dirty.add(event_id)

    def replay(self, rows: list[DeliveryRow], now: float) -> int:
        """Rows an operator asked to run again (already written to the store); returns how many were new."""
        added = 0
        for row in sorted(rows, key=lambda r: r.event_id):
            if row.event_id in self.items:
                continue
            self._dead.pop(row.event_id, None)
            self._settled.discard(row.event_id)
            # the row exists in the store (the operator queued it): never delete it behind the item's back
            self._deletes.discard(row.event_id)
            self._add(
                Item(
                    row.event_id,
                    row.key,
                    row.consumers,
                    State.PENDING,
                    row.attempts,
                    None,
                    row.error,
                    row.traceback,
                    since=now,
                    persisted=True,
                )
            )
            added += 1
        return added

    def _add(self, item: Item) -> None:
        self.items[item.event_id] = item
        queue = self._keys.get(item.key)
        if queue is None:
            queue = self._keys[item.key] = deque()
        queue.append(item.event_id)
        if item.state is State.RETRY and item.retry_at is not None:
            heapq.heappush(self._timers, (item.retry_at, item.event_id))
        if len(queue) == 1 and item.state is State.PENDING:
            self._mark_ready(item.key)

    def _mark_ready(self, key: str) -> None:
        if key not in self._ready_set:
            self._ready_set.add(key)
            heapq.heappush(self._ready, (self._keys[key][0], key))

    # -- decisions going out ---------------------------------------------------------------------

    def take_ready(self, limit: int, now: float = 0.0) -> list[Item]:
        """Items to run now: the oldest runnable items, at most ``limit``, as chains per key.

        Items are taken in id order across keys (a merge over the keys whose head is free), so work
        finishes roughly in log order and the durable position follows it closely; a key's items in one
        batch form a chain (at most ``max_chain`` long) that the worker runs in order.
        """
        out: list[Item] = []
        heap = self._ready
        items = self.items
        keys = self._keys
        chained: dict[str, int] = {}  # key -> index of its next item in this batch's chain
        while heap and len(out) < limit:
            event_id, key = heapq.heappop(heap)
            queue = keys.get(key)
            if queue is None:
                continue
            index = chained.get(key)
            if index is None:
                # a fresh ready key: valid only if it is still marked ready with this head
                if key not in self._ready_set or queue[0] != event_id:
                    continue
                self._ready_set.discard(key)
                index = 0
            elif index >= len(queue) or queue[index] != event_id:
                continue
            item = items[event_id]
            if item.state is not State.PENDING:
                continue
            item.state = State.RUNNING
            item.started = now
            self.running_ids.add(event_id)
            if item.persisted:
                self._dirty.add(event_id)
            out.append(item)
            index += 1
            chained[key] = index
            if index < len(queue) and index < self.max_chain:
                heapq.heappush(heap, (queue[index], key))
        return out

    def succeeded(self, event_id: int) -> None:
        """The item finished (success, or skipped by the plugin): drop it and free its key."""
        item = self.items.pop(event_id, None)
        if item is None:
            return
        self._forget(item)
        if event_id > self._finished_max:
            self._finished_max = event_id
        if item.persisted:
            self._deletes.add(event_id)

    def failed(
        self,
        event_id: int,
        now: float,
        error: str,
        traceback: str | None = None,
        *,
        remaining: tuple[str, ...] | None = None,
        retry_after: float | None = None,
        final: bool = False,
        hold: bool = False,
    ) -> Failure:
        """An attempt failed. Retry later (the key stays blocked) or dead-letter it (the key moves on).

        ``hold`` keeps the item whatever its attempt count (the deactivate policy: the group stops and
        resumes at this event when reactivated; it is never dead-lettered).
        """
        item = self.items[event_id]
        item.attempts += 1
        item.error = error
        item.traceback = traceback
        if remaining:
            item.consumers = remaining
        if not hold and (final or item.attempts >= self.max_attempts):
            item.state = State.DEAD
            item.retry_at = None
            self.items.pop(event_id)
            self._forget(item)
            self._dead[event_id] = item
            return Failure(True, None, item.attempts)
        delay = max(0.0, retry_after) if retry_after is not None else self.backoff.delay(item.attempts, self.rng)
        item.state = State.RETRY
        self.running_ids.discard(event_id)
        item.retry_at = now + delay
        heapq.heappush(self._timers, (item.retry_at, event_id))
        self._dirty.add(event_id)  # a retry always gets a row, persisted before or not
        self._release_behind(item.key, event_id)
        return Failure(False, item.retry_at, item.attempts)

    def interrupted(self, event_id: int) -> None:
        """The item did not run to completion through no fault of its own: run it again, no attempt counted."""
        item = self.items.get(event_id)
        if item is None or item.state is not State.RUNNING:
            return
        item.state = State.PENDING
        self.running_ids.discard(event_id)
        self._touch(item)
        queue = self._keys[item.key]
        if queue[0] == event_id:
            self._release_behind(item.key, event_id)
            self._mark_ready(item.key)

    def _release_behind(self, key: str, event_id: int) -> None:
        """Items dispatched in a chain behind ``event_id`` did not run: they are pending again."""
        for other in self._keys.get(key, ()):
            if other == event_id:
                continue
            item = self.items[other]
            if item.state is State.RUNNING:
                item.state = State.PENDING
                self.running_ids.discard(other)
                self._touch(item)

    def due(self, now: float) -> int:
        """Retries whose time has come become runnable; returns how many."""
        count = 0
        while self._timers and self._timers[0][0] <= now:
            _, event_id = heapq.heappop(self._timers)
            item = self.items.get(event_id)
            if item is None or item.state is not State.RETRY or (item.retry_at or 0) > now:
                continue
            item.state = State.PENDING
            item.retry_at = None
            self._touch(item)
            if self._keys[item.key][0] == event_id:
                self._mark_ready(item.key)
            count += 1
        return count

    def next_due(self) -> float | None:
        while self._timers:
            retry_at, event_id = self._timers[0]
            item = self.items.get(event_id)
            if item is not None and item.state is State.RETRY and item.retry_at == retry_at:
                return retry_at
            heapq.heappop(self._timers)
        return None

    def _touch(self, item: Item) -> None:
        if item.persisted:
            self._dirty.add(item.event_id)

    def _forget(self, item: Item) -> None:
        self.running_ids.discard(item.event_id)
        self._unpersisted.pop(item.event_id, None)
        self._dirty.discard(item.event_id)
        queue = self._keys[item.key]
        if queue[0] == item.event_id:
            queue.popleft()
        else:
            queue.remove(item.event_id)
        if not queue:
            del self._keys[item.key]
        else:
            head = self.items[queue[0]]
            if head.state is State.PENDING:
                self._mark_ready(item.key)

    # -- durability ------------------------------------------------------------------------------

    def _stalled(self, item: Item, now: float) -> bool:
        """Whether an item is held up (running long, waiting to retry, or queued behind such an item).

        Items merely queued for a free worker are not stalled: the position catches up with them soon,
        so they need no row (unless newer events already finished, see :meth:`checkpoint`).
        """
        if item.state is State.RETRY:
            return True
        if item.state is State.RUNNING:
            return now - item.started >= self.persist_after
        head = self.items[self._keys[item.key][0]]
        if head is item:
            return False
        return head.state is State.RETRY or (head.state is State.RUNNING and now - head.started >= self.persist_after)

    def checkpoint(self, now: float, persist_all: bool = False) -> Checkpoint:
        """Plan the next durable write; call :meth:`committed` once it is written.

        The position moves up to the oldest unfinished item without a row. Rows are written for the
        oldest items (in id order) that are older than ``persist_after`` and either stalled or behind a
        newer event that already finished (holding the position there would make a crash redo that
        finished work), so a slow or failing key never holds the position back and a restart redoes only
        recent work; retries and dead letters always get a row. Items merely queued, with nothing newer
        finished, need no row: the position catches up with them.
        """
        upserts: dict[int, DeliveryRow] = {}
        first_unpersisted: int | None = None
        for event_id in self._unpersisted:
            item = self.items[event_id]
            if not persist_all and (
                now - item.since < self.persist_after
                or (event_id > self._finished_max and not self._stalled(item, now))
            ):
                first_unpersisted = event_id
                break
            upserts[event_id] = item.row()
        for event_id in self._dirty:
            dirty = self.items.get(event_id)
            if dirty is not None:
                upserts[event_id] = dirty.row()
        for event_id, item in self._dead.items():
            upserts[event_id] = item.row()
        if first_unpersisted is not None and first_unpersisted in upserts:
            first_unpersisted = next((i for i in self._unpersisted if i not in upserts), None)
        position = self.read_pos if first_unpersisted is None else first_unpersisted - 1
        deletes = tuple(i for i in self._deletes if i not in upserts)
        return Checkpoint(max(position, self.position), tuple(upserts.values()), deletes)

    def committed(self, plan: Checkpoint) -> None:
        """The plan is durable: remember which items now have rows."""
        self.position = plan.position
        for row in plan.upserts:
            self._dirty.discard(row.event_id)
            dead = self._dead.get(row.event_id)
            if dead is not None and dead.row() == row:
                del self._dead[row.event_id]
            item = self.items.get(row.event_id)
            if item is not None:
                item.persisted = True
                self._unpersisted.pop(row.event_id, None)
                if item.row() != row:
                    self._dirty.add(row.event_id)
            elif row.state is not State.DEAD and row.event_id not in self._dead:
                # finished while the write was in flight: its row must go next time (a dead-lettered
                # one keeps it: its dead row is written next time)
                self._deletes.add(row.event_id)
        self._deletes.difference_update(plan.deletes)

    # -- introspection ---------------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        return len(self.items)

    @property
    def running(self) -> int:
        return len(self.running_ids)

    def held_up(self, now: float) -> int:
        """How many items wait behind a head that is retrying or has run for ``persist_after`` or longer.

        The runtime reads ahead of the worker only while the items that can run soon are few; items held
        up by a slow or failing key do not count, so such a key never stops the group reading on."""
        count = 0
        items = self.items
        for queue in self._keys.values():
            head = items[queue[0]]
            if head.state is State.RETRY or (head.state is State.RUNNING and now - head.started >= self.persist_after):
                count += len(queue)
        return count

    def blocked_keys(self) -> list[str]:
        """Keys whose head is waiting to retry."""
        return [k for k, q in self._keys.items() if self.items[q[0]].state is State.RETRY]
