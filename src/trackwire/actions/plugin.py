"""Call a Python function (``package.module:function`` or ``path/to/file.py:function``) with the firing.

The function gets ``context`` (the template variables) and the rendered ``args`` as keyword arguments;
a coroutine function is awaited (and cancelled at the timeout), a plain one runs in a thread. A thread cannot
be killed: a plain function still running at its timeout is recorded as timed out but runs on until it
returns. With ``isolate = true`` the function runs in a child process instead, killed (with its process group)
at the timeout; it then gets the context as JSON data and pays a process start per call.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trackwire.actions.base import ActionContext, ActionError
from trackwire.actions.children import run_child
from trackwire.actions.templating import render
from trackwire.core.event import dumps

__all__ = ["check", "resolve", "run"]


def check(params: dict[str, Any]) -> str | None:
    target = params.get("function")
    if not isinstance(target, str) or ":" not in target:
        return "a plugin action needs 'function' as 'module:function' or 'file.py:function'"
    if not isinstance(params.get("args", {}), dict):
        return "a plugin action's 'args' must be a table"
    if not isinstance(params.get("isolate", False), bool):
        return "a plugin action's 'isolate' must be true or false"
    return None


def resolve(target: str) -> Callable[..., Any]:
    where, _, name = target.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where)
            spec = importlib.util.spec_from_file_location(f"trackwire_action_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
        fn = getattr(module, name)
    except (ImportError, AttributeError, OSError, SyntaxError) as exc:
        raise ActionError(f"cannot load {target}: {type(exc).__name__}: {exc}", retry=False) from exc
    if not callable(fn):
        raise ActionError(f"{target} is not callable", retry=False)
    return fn  # type: ignore[no-any-return]


RECHECK = 1.0  # seconds between two looks at a function file's modification time


def _stamp(where: str) -> int | None:
    try:
        return os.stat(where).st_mtime_ns
    except OSError:
        return None


def _cached(target: str, cache: dict[str, Any]) -> Callable[..., Any]:
    """``resolve`` once per target. A ``file.py`` target is loaded again when the file changes; its
    modification time is looked at most once per ``RECHECK`` seconds, not on every call (a burst calls the
    same function thousands of times a second)."""
    found = cache.get(target)
    now = time.monotonic()
    if found is not None and now - found[2] < RECHECK:
        return found[1]  # type: ignore[no-any-return]
    where = target.rpartition(":")[0]
    stamp = _stamp(where) if where.endswith(".py") else None
    if found is not None and found[0] == stamp:
        cache[target] = (stamp, found[1], now)
        return found[1]  # type: ignore[no-any-return]
    fn = resolve(target)
    cache[target] = (stamp, fn, now)
    return fn


async def run(params: dict[str, Any], ctx: ActionContext, timeout: float) -> str:
    variables = ctx.template_vars()
    args = render(params.get("args", {}), variables)
    if params.get("isolate"):
        return await _isolated(str(params["function"]), variables, args, timeout)
    fn = _cached(str(params["function"]), ctx.functions)
    try:
        if inspect.iscoroutinefunction(fn):
            result = await fn(context=variables, **args)
        elif ctx.threads is not None:
            result = await ctx.threads.call(lambda: fn(context=variables, **args))
        else:
            result = await asyncio.to_thread(lambda: fn(context=variables, **args))
    except ActionError:
        raise
    except Exception as exc:
        raise ActionError(f"{params['function']} raised {type(exc).__name__}: {exc}") from exc
    return f"{params['function']} returned {result!r}"[:300]


async def _isolated(target: str, variables: dict[str, Any], args: Any, timeout: float) -> str:
    """Call the function in a child process (killed with everything it started at the timeout)."""
    request = dumps({"function": target, "context": variables, "args": args}).encode()
    try:
        code, output = await run_child(
            [sys.executable, "-m", "trackwire.actions.plugin_child"], timeout=timeout, stdin=request
        )
    except OSError as exc:
        raise ActionError(f"cannot start a child process for {target}: {exc}", retry=False) from exc
    text = output.decode("utf-8", "replace").strip()
    if code != 0:
        raise ActionError(f"{target} failed in its child process (exit {code}): {text[-500:]}")
    return f"{target} returned {text}"[:300]
