"""Pure logic: the event model, matching, ordering and delivery rules. No I/O lives here."""

from __future__ import annotations
