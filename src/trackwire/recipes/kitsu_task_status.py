"""Recipe: a task's status follows the validation of its latest version (preview).

When a preview file's validation status changes (``preview-file:update``) and it is the latest
revision of its task, the task gets the status ``statuses`` maps it to (default validated -> done,
rejected -> retake), with a short comment. A task already in that status is left alone.

    [[plugins]]
    path = "…/trackwire/recipes/kitsu_task_status.py"
    options = { url = "http://kitsu/api", email = "bot@studio", statuses = { validated = "done", rejected = "retake" } }
"""

from __future__ import annotations

from trackwire.core.event import Event
from trackwire.plugins.kitsu import Kitsu, KitsuCall

kitsu = Kitsu()

DEFAULT = {"validated": "done", "rejected": "retake"}


@kitsu.on("preview-file:update")
def follow_latest_version(event: Event, k: KitsuCall) -> None:
    preview = k.entity()
    target = dict(k.options.get("statuses", DEFAULT)).get(str(preview.get("validation_status")))
    if target is None or not preview.get("task_id"):
        return
    gazu, client = k.gazu, k.client
    previews = gazu.client.fetch_all("preview-files", {"task_id": preview["task_id"]}, client=client)
    latest = max(previews, key=lambda p: (p.get("revision") or 0, p.get("created_at") or ""))
    if latest["id"] != preview["id"]:
        k.log.info("preview %s is not the latest of its task; task status unchanged", preview["id"])
        return
    task = gazu.task.get_task(preview["task_id"], client=client)
    if task["task_status"]["short_name"] == target:
        return
    status = gazu.task.get_task_status_by_short_name(target, client=client)
    revision = preview.get("revision")
    gazu.task.add_comment(task, status, f"Version {revision} {preview['validation_status']}.", client=client)
    k.log.info("task %s set to %s (version %s %s)", task["id"], target, revision, preview["validation_status"])
