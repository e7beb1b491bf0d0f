"""What every built-in action gets (its context) and how it reports a failure (retryable or not)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from trackwire.actions.threads import FunctionThreads
from trackwire.config import AutomationSettings
from trackwire.core.event import Event, encode_event, loads

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
    """Events as plain JSON data (fresh copies: an action may change them), in one encoding pass."""
    if not events:
        return []
    out: list[dict[str, Any]] = loads("[" + ",".join(encode_event(e) for e in events) + "]")
    for data, event in zip(out, events, strict=True):
        for name in ("occurred", "received"):
            value = getattr(event, name)
            data[name] = value.isoformat() if value is not None else None
    return out


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
