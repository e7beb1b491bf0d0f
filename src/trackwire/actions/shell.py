"""A command run as an argument list (never through a shell); non-zero exit or timeout is a failure.

The command runs in its own process group; a timeout kills the group, so nothing it started is left behind.
"""

from __future__ import annotations

import json
import os
from typing import Any

from trackwire.actions.base import ActionContext, ActionError
from trackwire.actions.children import run_child
from trackwire.actions.templating import render

__all__ = ["check", "run"]


def check(params: dict[str, Any]) -> str | None:
    command = params.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        return "a shell action needs 'command' as a list of strings (it never runs through a shell)"
    return None


async def run(params: dict[str, Any], ctx: ActionContext, timeout: float) -> str:
    variables = ctx.variables
    argv = [str(a) for a in render(params["command"], variables)]
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in render(params.get("env", {}), variables).items()})
    env["TRACKWIRE_IDEMPOTENCY_KEY"] = ctx.idempotency_key
    env["TRACKWIRE_FIRING"] = json.dumps(ctx.firing, default=str)
    try:
        code, output = await run_child(argv, timeout=timeout, env=env, cwd=params.get("cwd"))
    except OSError as exc:
        raise ActionError(f"cannot start {argv[0]!r}: {exc}", retry=False) from exc
    text = output.decode("utf-8", "replace").strip()
    if code != 0:
        raise ActionError(f"{argv[0]} exited with {code}: {text[-500:]}")
    return f"{argv[0]} exited 0" + (f": {text[-200:]}" if text else "")
