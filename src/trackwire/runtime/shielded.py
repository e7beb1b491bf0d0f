"""Clean-up that must run to its end even when the task running it is cancelled (again) meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

__all__ = ["finish_despite_cancellation"]


async def finish_despite_cancellation(work: Awaitable[None]) -> None:
    """Await ``work`` to its end whatever cancellations arrive meanwhile, then pass one of them on.

    A stopping daemon cancels its services and, if they linger, cancels them once more; a stop that
    closes worker processes or writes a final checkpoint must not be cut in half by the second cancel.
    ``work``'s own exception wins over a cancellation that arrived while it ran.
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
