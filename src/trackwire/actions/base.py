"""What every built-in action gets (its context) and how it reports a failure (retryable or not)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trackwire.config import AutomationSettings
from trackwire.core.event import Event, encode_event, loads

__all__ = ["ActionContext", "ActionError", "Emit", "event_json"]

Emit = Callable[[Sequence[Event]], Awaitable[Sequence[int | None]]]


class ActionError(Exception):
    """An action failed; ``retry`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def event_json(event: Event) -> dict[str, Any]:
    """An event as plain JSON data, the shape templates see."""
    out: dict[str, Any] = loads(encode_event(event))
    for name in ("occurred", "received"):
        value = getattr(event, name)
        out[name] = value.isoformat() if value is not None else None
    return out


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

    def template_vars(self) -> dict[str, Any]:
        events = [event_json(e) for e in self.events]
        trigger_event = event_json(self.event) if self.event is not None else (events[-1] if events else None)
        return {
            "automation": self.automation,
            "firing": self.firing,
            "reason": self.firing.get("reason"),
            "key": self.firing.get("key"),
            "count": len(self.events),
            "events": events,
            "event": trigger_event,
            "window": self.firing.get("window"),
            "idempotency_key": self.idempotency_key,
        }
