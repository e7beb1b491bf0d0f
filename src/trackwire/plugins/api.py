"""The native plugin API: decorate a function to say which events it wants.

    from trackwire import Context, Event, on

    @on("Shotgun_Task_Change", attribute="sg_status_list", where={"new": "ip"})
    def task_started(event: Event, ctx: Context) -> None:
        ctx.log.info("task %s started", event.entity)

Callbacks of one file run in the order they are defined, one after another for each event. Raise
``Retry(after=...)``, ``Fail(...)`` or ``Skip(...)`` to steer the delivery; any other exception is a
failure that is retried with backoff and then dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from trackwire.core.event import Event, Ref
from trackwire.core.matching import Filter

__all__ = ["CONSUMERS_ATTRIBUTE", "Context", "Emitter", "on"]

CONSUMERS_ATTRIBUTE = "__trackwire_consumers__"

F = TypeVar("F", bound=Callable[..., Any])


def _tuple(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def on(
    *types: str,
    attribute: str | list[str] | tuple[str, ...] | None = None,
    entity_type: str | list[str] | tuple[str, ...] | None = None,
    project: str | int | list[str | int] | None = None,
    where: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Callable[[F], F]:
    """Register the decorated function for events of ``types`` (globs; none means every type).

    ``attribute`` and ``entity_type`` take names or globs; ``project`` an id or name; ``where`` maps
    dotted paths (``new``, ``data.meta.new_value``) to the value they must equal, or a list of values.
    """
    projects = (
        None if project is None else tuple(str(p) for p in ([project] if not isinstance(project, list) else project))
    )
    flt = Filter(
        types=tuple(types) or ("*",),
        attributes=_tuple(attribute),
        entity_types=_tuple(entity_type),
        projects=projects,
        where=tuple((k, v) for k, v in (where or {}).items()),
    )

    def decorate(fn: F) -> F:
        registered: list[tuple[str, Filter]] = list(getattr(fn, CONSUMERS_ATTRIBUTE, []))
        registered.append((name or fn.__name__, flt))
        setattr(fn, CONSUMERS_ATTRIBUTE, registered)
        return fn

    return decorate


Emitter = Callable[[list[Event]], None]


@dataclass
class Context:
    """What a callback gets besides the event."""

    plugin: str
    consumer: str
    log: logging.Logger
    attempt: int
    options: Mapping[str, Any]
    event: Event
    _emit: Emitter | None = field(default=None, repr=False)
    _emitted: int = field(default=0, repr=False)

    def emit(
        self,
        type: str,
        *,
        entity: Ref | str | None = None,
        data: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> None:
        """Append a follow-up event to the log (``follows`` the current one).

        Its dedupe key is derived from the current event and the call's position, so a retried
        callback does not emit twice.
        """
        if self._emit is None:
            raise RuntimeError("this context cannot emit events (no store configured)")
        self._emitted += 1
        follow = Event(
            source=f"plugin:{self.plugin}",
            source_id=f"{self.event.id}:{self.consumer}:{self._emitted}",
            type=type,
            entity=Ref.from_json(entity) if entity is not None else None,
            project=self.event.project,
            data=data or {},
            follows=self.event.id,
            key=key,
        )
        self._emit([follow])
