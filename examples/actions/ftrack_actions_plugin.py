"""An ftrack plugin (kind = "ftrack") that serves the studio's hosted actions in ftrack's action menu.

Set the source's subscription to include actions: ``subscription = "topic=ftrack.update or topic=ftrack.action.*"``.
With the plugin options ``store_url`` (the daemon's store) and ``web_url`` (where its web app is reached),
long actions are queued as jobs for the daemon's job runner and answered at once with their page's URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trackwire.actions.hosted import ftrack_subscribe
from trackwire.actions.jobs import JobQueue
from trackwire.actions.loading import load_actions


def register(session: Any, **kw: Any) -> None:
    actions = load_actions(Path(__file__).with_name("studio_actions.py"))
    submit = JobQueue(kw["store_url"], kw.get("web_url", "")) if kw.get("store_url") else None
    ftrack_subscribe(session, actions, kw.get("username"), submit)
