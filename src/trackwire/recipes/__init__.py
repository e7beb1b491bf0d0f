"""Studio recipes: configurable example plugins for the automations studios run on every tracker.

Each ``kitsu_*.py`` file is a plugin: point a ``[[plugins]]`` entry at it and set its ``options``.
The decisions (which day's dailies, which folders, which hand-off) live in :mod:`trackwire.recipes.logic`,
free of any tracker, so a ShotGrid variant is a short file of API calls around the same functions.

- ``kitsu_dailies.py``: a version waiting for approval joins the dailies playlist of the day (next day after 10:00).
- ``kitsu_project_folders.py``: a new project gets its folder tree from a template.
- ``kitsu_task_status.py``: the task status follows the validation of its latest preview (version).
- ``kitsu_handoff.py``: a task reaching a hand-off status notifies the next task's assignees (Slack or email).
- ``kitsu_task_folder.py``: a new task gets its folder and a copy of its task type's template file.

All are idempotent: running one twice for an event changes nothing the second time.
"""

from __future__ import annotations
