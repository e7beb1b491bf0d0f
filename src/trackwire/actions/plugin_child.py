"""Runs one plugin function for an isolated plugin action (``isolate = true``), in a child process the
daemon can kill at the action's timeout. Reads ``{"function", "context", "args"}`` as JSON on stdin and
prints the function's result (its ``repr``) on stdout; an exception exits non-zero with its traceback."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys


def main() -> int:
    from trackwire.actions.plugin import resolve

    request = json.loads(sys.stdin.read())
    fn = resolve(str(request["function"]))
    result = fn(context=request["context"], **request["args"])
    if inspect.isawaitable(result):
        result = asyncio.run(_wait(result))
    sys.stdout.write(repr(result))
    return 0


async def _wait(awaitable: object) -> object:
    return await awaitable  # type: ignore[misc]


if __name__ == "__main__":
    sys.exit(main())
