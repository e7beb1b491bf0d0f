"""Recipe: a new project gets its folder tree on disk from a template.

On ``project:new`` (for the ``production_types`` listed, default all), every folder of ``folders``
is created under ``root``, with ``{project}`` (and ``{code}``, ``{production_type}``) filled in.
Existing folders are kept: running it again creates only what is missing.

    [[plugins]]
    path = "…/trackwire/recipes/kitsu_project_folders.py"
    options = { url = "http://kitsu/api", email = "bot@studio", root = "/prod",
                production_types = ["featurefilm", "tvshow"],
                folders = ["{project}/editorial", "{project}/assets", "{project}/shots", "{project}/output/dailies"] }
"""

from __future__ import annotations

from pathlib import Path

from trackwire.core.event import Event
from trackwire.plugins.kitsu import Kitsu, KitsuCall
from trackwire.recipes.logic import ensure_tree

kitsu = Kitsu()

DEFAULT_FOLDERS = ["{project}", "{project}/editorial", "{project}/assets", "{project}/shots", "{project}/output"]


@kitsu.on("project:new")
def create_project_tree(event: Event, k: KitsuCall) -> None:
    project = k.entity()
    wanted = k.options.get("production_types")
    if wanted and project.get("production_type") not in wanted:
        return
    values = {
        "project": project["name"],
        "code": project.get("code") or project["name"],
        "production_type": project.get("production_type") or "",
    }
    created = ensure_tree(Path(k.options["root"]), k.options.get("folders", DEFAULT_FOLDERS), values)
    k.log.info("project %s: %d folders created", project["name"], len(created))
