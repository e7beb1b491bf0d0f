"""Emit an event into the log. It ``follows`` the triggering event and carries its depth for the recursion guard;
its ``source_id`` is the idempotency key, so a retried action stores it once."""

from __future__ import annotations

from typing import Any

from trackwire.actions.base import ActionContext, ActionError
from trackwire.actions.templating import render
from trackwire.core.event import Event, Ref

__all__ = ["check", "run"]


def check(params: dict[str, Any]) -> str | None:
    if not isinstance(params.get("event_type"), str):
        return "an emit action needs 'event_type'"
    return None


async def run(params: dict[str, Any], ctx: ActionContext, timeout: float) -> str:
    if ctx.emit is None:
        raise ActionError("emitting events needs the daemon's store", retry=False)
    variables = ctx.variables
    data = render(params.get("data", {}), variables)
    if not isinstance(data, dict):
        raise ActionError("emit: 'data' must be a table", retry=False)
    data["trackwire"] = {"automation": ctx.automation, "firing": ctx.firing.get("id"), "depth": ctx.depth + 1}
    trigger = ctx.event
    entity = render(params["entity"], variables) if "entity" in params else (trigger.entity if trigger else None)
    project = render(params["project"], variables) if "project" in params else (trigger.project if trigger else None)
    event = Event(
        source=str(render(params.get("source", "automation:{{ automation }}"), variables)),
        source_id=ctx.idempotency_key,
        type=str(render(params["event_type"], variables)),
        entity=Ref.from_json(entity),
        project=Ref.from_json(project),
        data=data,
        follows=trigger.id if trigger is not None else None,
    )
    ids = await ctx.emit([event])
    return f"emitted {event.type} as event {ids[0]}" if ids and ids[0] else f"{event.type} was already emitted"
