"""A command run as an argument list (never through a shell); non-zero exit or timeout is a failure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from trackwire.actions.base import ActionContext, ActionError
from trackwire.actions.templating import render

__all__ = ["check", "run"]


def check(params: dict[str, Any]) -> str | None:
    command = params.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        return "a shell action needs 'command' as a list of strings (it never runs through a shell)"
    return None


async def run(params: dict[str, Any], ctx: ActionContext, timeout: float) -> str:
    variables = ctx.template_vars()
    argv = [str(a) for a in render(params["command"], variables)]
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in render(params.get("env", {}), variables).items()})
    env["TRACKWIRE_IDEMPOTENCY_KEY"] = ctx.idempotency_key
    env["TRACKWIRE_FIRING"] = json.dumps(ctx.firing, default=str)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=params.get("cwd"),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise ActionError(f"cannot start {argv[0]!r}: {exc}", retry=False) from exc
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    text = output.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        raise ActionError(f"{argv[0]} exited with {proc.returncode}: {text[-500:]}")
    return f"{argv[0]} exited 0" + (f": {text[-200:]}" if text else "")
