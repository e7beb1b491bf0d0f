"""Demo plugin: add every new version to today's dailies playlist (a JSON file), idempotently.

The real recipe (issue: studio recipes) adds it to a tracker playlist; the shape is the same: read the
event, find today's playlist, add the version once even if the event is delivered twice.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from trackwire import Context, Event, on


@on("Shotgun_Version_New")
def add_to_dailies(event: Event, ctx: Context) -> None:
    folder = Path(ctx.options.get("folder", "demo-dailies"))
    folder.mkdir(parents=True, exist_ok=True)
    playlist = folder / f"dailies-{date.today():%Y-%m-%d}.json"
    versions = json.loads(playlist.read_text()) if playlist.exists() else []
    name = event.entity.name if event.entity else str(event.id)
    if name in versions:
        return
    versions.append(name)
    tmp = playlist.with_suffix(".tmp")
    tmp.write_text(json.dumps(versions, indent=1))
    tmp.replace(playlist)
    ctx.log.info("added %s to %s (%d versions)", name, playlist.name, len(versions))
