"""Recipe: a new task gets its folder on disk (with the shot's folders) and its task type's template file.

On ``task:new`` the folder ``shot_path`` (shots) or ``asset_path`` (assets) is created under
``root``, and ``templates``/``<task type>.<ext>`` (for example ``templates/animation.ma``) is copied
into it as ``file_name`` (default ``{entity}_{task_type}_v001``, keeping the extension). An existing
file is never overwritten, so running it again changes nothing.

    [[plugins]]
    path = "…/trackwire/recipes/kitsu_task_folder.py"
    options = { url = "http://kitsu/api", email = "bot@studio", root = "/prod", templates = "/prod/_templates",
                shot_path = "{project}/shots/{sequence}/{entity}/{task_type}",
                asset_path = "{project}/assets/{entity_type}/{entity}/{task_type}" }
"""

from __future__ import annotations

from pathlib import Path

from trackwire.core.event import Event
from trackwire.plugins.kitsu import Kitsu, KitsuCall
from trackwire.recipes.logic import copy_template, ensure_tree, render_path, template_file

kitsu = Kitsu()

SHOT_PATH = "{project}/shots/{sequence}/{entity}/{task_type}"
ASSET_PATH = "{project}/assets/{entity_type}/{entity}/{task_type}"


@kitsu.on("task:new")
def create_task_folder(event: Event, k: KitsuCall) -> None:
    task = k.gazu.task.get_task(str(event.entity.id if event.entity else ""), client=k.client)
    entity_type = (task.get("entity_type") or {}).get("name", "Shot")
    values = {
        "project": task["project"]["name"],
        "entity": task["entity"]["name"],
        "entity_type": entity_type,
        "sequence": (task.get("sequence") or {}).get("name", "_"),
        "task_type": task["task_type"]["name"],
    }
    template = (
        k.options.get("shot_path", SHOT_PATH) if entity_type == "Shot" else k.options.get("asset_path", ASSET_PATH)
    )
    root = Path(k.options["root"])
    ensure_tree(root, [template], values)
    folder = root.resolve() / render_path(template, values)
    source = template_file(Path(k.options.get("templates", root / "_templates")), values["task_type"])
    if source is None:
        k.log.info("no template file for %s; folder %s only", values["task_type"], folder)
        return
    name = render_path(str(k.options.get("file_name", "{entity}_{task_type}_v001")), values).name + source.suffix
    if copy_template(source, folder / name):
        k.log.info("copied %s to %s", source.name, folder / name)
