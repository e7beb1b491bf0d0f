"""Capped exponential backoff with full jitter (the AWS architecture blog's recommendation)."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 1.0
    cap: float = 300.0
    jitter: bool = True

    def ceiling(self, attempt: int) -> float:
        """The longest wait after ``attempt`` failures (attempt 1 waits at most ``base``)."""
        exponent = max(0, attempt - 1)
        if exponent > 62:
            return self.cap
        return float(min(self.cap, self.base * (2.0**exponent)))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        draw = (rng or random).random()
        # Keep at least a tenth of the ceiling so a retry never fires immediately.
        return ceiling * (0.1 + 0.9 * draw)
