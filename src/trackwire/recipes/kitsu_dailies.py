"""Recipe: a version waiting for approval joins the dailies playlist of the day.

When a task's status becomes one of ``statuses`` (default ``["wfa"]``, "waiting for approval"), its
entity is added, with the task's latest preview, to the playlist ``playlist`` of the day the change
happened, studio time; after ``cutoff`` (default ``"10:00"``) it joins the next day's instead. The
playlist is created when missing; an entity already in it is left alone (idempotent).

    [[plugins]]
    path = "…/trackwire/recipes/kitsu_dailies.py"
    options = { url = "http://kitsu/api", email = "bot@studio", statuses = ["wfa"], cutoff = "10:00",
                timezone = "Europe/Paris", playlist = "Dailies {date:%Y-%m-%d}" }
"""

from __future__ import annotations

from datetime import time
from typing import Any

from trackwire.core.event import Event
from trackwire.plugins.kitsu import Kitsu, KitsuCall
from trackwire.recipes.logic import dailies_day, studio_zone

kitsu = Kitsu()


def latest_preview(k: KitsuCall, task_id: str) -> dict[str, Any] | None:
    previews: list[dict[str, Any]] = k.gazu.client.fetch_all("preview-files", {"task_id": task_id}, client=k.client)
    return max(previews, key=lambda p: (p.get("revision") or 0, p.get("created_at") or "")) if previews else None


@kitsu.on("task:status-changed")
def add_to_dailies(event: Event, k: KitsuCall) -> None:
    status = k.get("TaskStatus", str(event.new), max_age=300)
    if status["short_name"] not in k.options.get("statuses", ["wfa"]):
        return
    gazu, client = k.gazu, k.client
    task = gazu.task.get_task(str(event.entity.id if event.entity else ""), client=client)
    hour, minute = (int(x) for x in str(k.options.get("cutoff", "10:00")).split(":"))
    day = dailies_day(event.occurred, studio_zone(k.options.get("timezone")), time(hour, minute))
    name = str(k.options.get("playlist", "Dailies {date:%Y-%m-%d}")).format(date=day)
    kind = (task.get("entity_type") or {}).get("name", "Shot")
    for_entity = "asset" if kind not in ("Shot", "Sequence", "Episode", "Edit") else kind.lower()
    if for_entity != "shot":
        name = f"{name} ({kind}s)"
    project = task["project_id"]
    playlist = gazu.playlist.get_playlist_by_name(project, name, client=client)
    if playlist is None:
        playlist = gazu.playlist.new_playlist(project, name, for_entity=for_entity, client=client)
    playlist = gazu.playlist.get_playlist(playlist["id"], client=client)
    preview = latest_preview(k, task["id"])
    entries = playlist.get("shots") or []
    if any(
        e.get("entity_id") == task["entity_id"] and (preview is None or e.get("preview_file_id") == preview["id"])
        for e in entries
    ):
        k.log.info("%s is already in %s", task["entity"]["name"], name)
        return
    gazu.playlist.add_entity_to_playlist(playlist, task["entity_id"], preview_file=preview, client=client)
    k.log.info("added %s to %s", task["entity"]["name"], name)
