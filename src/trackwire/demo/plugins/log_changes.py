"""Demo plugin: log every status change in one readable line."""

from __future__ import annotations

from trackwire import Context, Event, on


@on("Shotgun_*_Change", attribute="sg_status_list")
def status_changed(event: Event, ctx: Context) -> None:
    user = event.user.name if event.user else "someone"
    ctx.log.info(
        "%s moved %s %s from %s to %s",
        user,
        event.entity.type if event.entity else "?",
        event.entity.name if event.entity else "?",
        event.old,
        event.new,
    )
