"""Demo plugin: when a task is final, emit a follow-up event; a second callback reacts to it."""

from __future__ import annotations

from trackwire import Context, Event, on


@on("Shotgun_Task_Change", attribute="sg_status_list", where={"new": "fin"})
def task_final(event: Event, ctx: Context) -> None:
    ctx.emit("demo.task.approved", entity=event.entity, data={"task": event.data.get("entity")})


@on("demo.task.approved")
def notify_supervisor(event: Event, ctx: Context) -> None:
    ctx.log.info("notify the supervisor: %s is approved (follows event %s)", event.entity, event.follows)
