"""Sources turn tracker records into events and append them with their cursor. They know no consumer."""

from __future__ import annotations

import asyncio
from typing import Protocol

from trackwire.ports import Store

__all__ = ["Source"]


class Source(Protocol):
    name: str

    async def run(self, store: Store, stop: asyncio.Event, appended: asyncio.Event) -> None:
        """Append events until ``stop`` is set; set ``appended`` after each append to wake the engine."""
