"""Clocks: the real one, and a manual one for tests of anything time-dependent."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["ManualClock", "SystemClock"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


@dataclass
class ManualClock:
    """A clock that moves only when told to."""

    current: float = 1_700_000_000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.current, UTC)

    def monotonic(self) -> float:
        return self.current

    def time(self) -> float:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds
