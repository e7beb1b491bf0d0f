"""An ftrack plugin (kind = "ftrack") that serves the studio's hosted actions in ftrack's action menu.

Set the source's subscription to include actions: ``subscription = "topic=ftrack.update or topic=ftrack.action.*"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trackwire.actions.hosted import ftrack_subscribe
from trackwire.actions.loading import load_actions


def register(session: Any, **kw: Any) -> None:
    actions = load_actions(Path(__file__).with_name("studio_actions.py"))
    ftrack_subscribe(session, actions, kw.get("username"))
