"""Built-in actions: webhook, Slack, email, shell command, emit an event, call a plugin function.

Each action module has ``check(params) -> problem | None`` (used when definitions load) and
``async run(params, ctx, timeout) -> detail`` (raises :class:`ActionError`). Retries, timeouts and the
recorded outcome are the executor's job (:mod:`trackwire.automations.executor`).
"""

from __future__ import annotations

import importlib
from typing import Any

from trackwire.actions.base import ActionContext, ActionError, event_json

__all__ = ["ACTION_MODULES", "ActionContext", "ActionError", "check_params", "event_json", "run_action"]

ACTION_MODULES = {
    "webhook": "trackwire.actions.webhook",
    "slack": "trackwire.actions.slack",
    "email": "trackwire.actions.email",
    "shell": "trackwire.actions.shell",
    "emit": "trackwire.actions.emit",
    "plugin": "trackwire.actions.plugin",
}


def check_params(kind: str, params: dict[str, Any]) -> str | None:
    if kind not in ACTION_MODULES:
        return f"unknown action type {kind!r}; known: {', '.join(ACTION_MODULES)}"
    problem: str | None = importlib.import_module(ACTION_MODULES[kind]).check(params)
    return problem


async def run_action(kind: str, params: dict[str, Any], ctx: ActionContext, timeout: float) -> str:
    detail: str = await importlib.import_module(ACTION_MODULES[kind]).run(params, ctx, timeout)
    return detail
