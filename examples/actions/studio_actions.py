"""The studio's hosted actions (seed 002), written once for ShotGrid, ftrack and Kitsu.

Each handler works out what to do from the invocation; the tracker writes go through the client the
studio configures (here: shotgun-api3 when TRACKWIRE_EXAMPLE_SG_SITE/_SCRIPT/_KEY are set), and
otherwise the action answers with what it would do, so the examples run anywhere.
"""

from __future__ import annotations

import os
import time
from typing import Any

from trackwire.actions.hosted import Field, Invocation, Outcome, action


def _shotgrid() -> Any:
    site = os.environ.get("TRACKWIRE_EXAMPLE_SG_SITE")
    if not site:
        return None
    from shotgun_api3.shotgun import Shotgun

    return Shotgun(site, os.environ["TRACKWIRE_EXAMPLE_SG_SCRIPT"], os.environ["TRACKWIRE_EXAMPLE_SG_KEY"])


@action(
    "loco.batch-create-shots",
    label="Batch Create",
    description="Create a range of shots named from a pattern.",
    icon="create",
    entity_types=("Project", "Sequence", "Shot", "show", "sequence", "shot"),
    form=(
        Field("pattern", "Naming pattern", value="sh{:04d}", required=True),
        Field("first", "First number", "number", 10, required=True),
        Field("last", "Last number", "number", 100, required=True),
        Field("step", "Step", "number", 10),
    ),
)
def batch_create_shots(inv: Invocation) -> Outcome:
    values = inv.values or {}
    first, last, step = int(values["first"]), int(values["last"]), int(values.get("step") or 10)
    if last < first or step < 1 or (last - first) // step >= 1000:
        return Outcome(False, "the range must go up, with a step of at least 1, and make at most 1000 shots")
    try:
        names = [str(values["pattern"]).format(n) for n in range(first, last + 1, step)]
    except (IndexError, KeyError, ValueError) as exc:
        return Outcome(False, f"the naming pattern does not work: {exc}")
    sg = _shotgrid() if inv.tracker == "shotgrid" else None
    if sg is not None and inv.project_id is not None:
        project = {"type": "Project", "id": int(inv.project_id)}
        sg.batch(
            [{"request_type": "create", "entity_type": "Shot", "data": {"code": n, "project": project}} for n in names]
        )
        return Outcome(True, f"created {len(names)} shots: {', '.join(names)}", {"shots": names})
    return Outcome(True, f"would create {len(names)} shots: {', '.join(names)}", {"shots": names})


@action("loco.clear-job-queue", label="Clear Job Queue", description="Clear your pending jobs.", icon="delete")
def clear_job_queue(inv: Invocation) -> Outcome:
    return Outcome(True, f"cleared the pending jobs of {inv.user_login or inv.user_id}")


@action(
    "loco.upload-media",
    label="Upload Media",
    description="Send a movie to the dailies review.",
    icon="upload",
    entity_types=("Task", "task"),
    selection="one",
    form=(Field("path", "Movie file", required=True), Field("note", "Note for review", "textarea", "")),
)
def upload_media(inv: Invocation) -> Outcome:
    path = str((inv.values or {})["path"])
    if not path.lower().endswith((".mov", ".mp4", ".exr", ".jpg", ".png")):
        return Outcome(False, f"{path} is not a movie or image file")
    return Outcome(True, f"{path} queued for dailies review on task {inv.selected[0]}")


@action(
    "loco.update-rv-component",
    label="Update RV Component",
    description="Add a playable 'movie' component so the version plays in RV.",
    entity_types=("Version", "assetversion", "AssetVersion"),
)
def update_rv_component(inv: Invocation) -> Outcome:
    versions = ", ".join(str(s) for s in inv.selected)
    return Outcome(True, f"movie component added to version(s) {versions}")


@action(
    "loco.client-review-sync",
    label="Client Review Sync",
    description="Sync a client review session with the cloud account (runs in the background).",
    icon="sync",
    entity_types=("ReviewSession", "reviewsession", "Playlist", "playlist"),
    selection="one",
    background=True,
    timeout=1800,
)
def client_review_sync(inv: Invocation) -> Outcome:
    """A long action: the tracker is answered at once and the user follows the progress on the job's page.

    The body is a placeholder for the studio's upload of each review item; each step reports progress.
    """
    steps = int(os.environ.get("TRACKWIRE_EXAMPLE_SYNC_STEPS", "10"))
    pause = float(os.environ.get("TRACKWIRE_EXAMPLE_SYNC_PAUSE", "0.5"))
    session = inv.selected[0]
    for step in range(steps):
        inv.progress(step / steps, f"syncing item {step + 1} of {steps} of review session {session}")
        time.sleep(pause)  # stands in for the upload of one item
    inv.progress(1.0, "done")
    return Outcome(True, f"review session {session}: {steps} items synced with the cloud account")
