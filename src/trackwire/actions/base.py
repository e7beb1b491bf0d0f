"""What every built-in action gets (its context) and how it reports a failure (retryable or not)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from trackwire.actions.threads import FunctionThreads
from trackwire.config import AutomationSettings
from trackwire.core.event import Event, dumps, loads

__all__ = ["TEMPLATE_NAMES", "ActionContext", "ActionError", "Emit", "TemplateVariables", "event_json"]

Emit = Callable[[Sequence[Event]], Awaitable[Sequence[int | None]]]


class ActionError(Exception):
    """An action failed; ``retry`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def event_json(event: Event) -> dict[str, Any]:
    """An event as plain JSON data, the shape templates see."""
    return events_json((event,))[0]


def events_json(events: Sequence[Event]) -> list[dict[str, Any]]:
    """Events as plain JSON data: fresh copies (an action may change them) of what the log's JSON holds, with
    ``occurred`` and ``received`` as ISO strings. Built directly rather than encoded and parsed back (4x
    faster on a typical event, and starting an action used to spend most of its time here)."""
    return [
        {
            "id": e.id,
            "source": e.source,
            "source_id": e.source_id,
            "type": e.type,
            "entity": None if e.entity is None else e.entity.to_json(),
            "project": None if e.project is None else e.project.to_json(),
            "user": None if e.user is None else e.user.to_json(),
            "attribute": e.attribute,
            "old": _plain(e.old),
            "new": _plain(e.new),
            "occurred": e.occurred.isoformat(),
            "received": None if e.received is None else e.received.isoformat(),
            "data": _plain(e.data),
            "follows": e.follows,
            "key": e.key,
        }
        for e in events
    ]


_ATOMS = frozenset((str, int, bool, type(None), datetime, date))


def _plain(value: Any) -> Any:
    """A copy of ``value`` as the log's JSON would give it back (lists for tuples, null for NaN; datetimes and
    dates stay)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is dict:
        if all(type(k) is str for k in value):
            return {k: _plain(v) for k, v in value.items()}
    elif kind is list or kind is tuple:
        return [_plain(v) for v in value]
    return loads(dumps(value))  # anything else (sets, bytes, non-text keys, subclasses...) as a round trip


TEMPLATE_NAMES = (
    "automation", "firing", "reason", "key", "count", "events", "event", "window", "idempotency_key",
)  # fmt: skip


class TemplateVariables(Mapping[str, Any]):
    """An action's template variables, each computed when first read: most templates never read the events,
    and encoding them is most of the cost of preparing an action."""

    __slots__ = ("_ctx", "_values")

    def __init__(self, ctx: ActionContext) -> None:
        self._ctx = ctx
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            pass
        if name not in TEMPLATE_NAMES:
            raise KeyError(name)
        value = self._values[name] = self._compute(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(TEMPLATE_NAMES)

    def __len__(self) -> int:
        return len(TEMPLATE_NAMES)

    def _compute(self, name: str) -> Any:
        ctx = self._ctx
        if name == "events":
            return events_json(ctx.events)
        if name == "event":
            if ctx.event is None:
                events = self["events"]
                return events[-1] if events else None
            for event, data in zip(ctx.events, self["events"], strict=True):
                if event is ctx.event:
                    return data
            return event_json(ctx.event)
        if name == "count":
            return len(ctx.events)
        if name == "automation":
            return ctx.automation
        if name == "idempotency_key":
            return ctx.idempotency_key
        if name == "firing":
            return ctx.firing
        return ctx.firing.get(name)  # reason, key, window


@dataclass(frozen=True)
class ActionContext:
    """A firing as actions see it. ``idempotency_key`` is the same on every attempt of one action."""

    automation: str
    firing: dict[str, Any]
    events: tuple[Event, ...]
    event: Event | None
    idempotency_key: str
    settings: AutomationSettings = field(default_factory=AutomationSettings)
    emit: Emit | None = None
    depth: int = 0
    functions: dict[str, Any] = field(default_factory=dict)  # loaded plugin functions, owned by the executor
    threads: FunctionThreads | None = None  # where plain plugin functions run (None: asyncio.to_thread)

    @cached_property
    def variables(self) -> TemplateVariables:
        """The template variables, computed as templates read them (see :class:`TemplateVariables`)."""
        return TemplateVariables(self)

    def template_vars(self) -> dict[str, Any]:
        """Every template variable as a plain dict, fresh on each call (what a plugin function gets as
        ``context``: an attempt that changes it leaves the next attempt's copy alone)."""
        return dict(TemplateVariables(self))
