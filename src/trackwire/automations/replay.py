"""The durable trigger state: the last checkpoint plus the journaled evaluation steps, replayed in order.

The service restores itself with it at start; ``trackwire automations show|explain`` use it to see the state
the daemon has committed (not only its last checkpoint).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

from trackwire.automations.state import AutomationState, JournalEntry
from trackwire.core.event import Event
from trackwire.core.triggers import Automation, Evaluator, Firing

__all__ = ["durable_evaluator", "replay"]

log = logging.getLogger("trackwire.automations")


def replay(evaluator: Evaluator, steps: Sequence[JournalEntry], events: Mapping[int, Event]) -> list[Firing]:
    """Apply journaled steps to ``evaluator`` in their order; the firings they produce were recorded before."""
    fired: list[Firing] = []
    for event_id, at, low in steps:
        if event_id is None:
            fired.extend(evaluator.sweep(at))
        elif event_id in events:
            fired.extend(evaluator.on_event(events[event_id], at, low))
        else:
            log.warning("event %d of the automation journal is no longer in the log; skipped", event_id)
    return fired


def durable_evaluator(
    state: AutomationState,
    automations: Iterable[Automation],
    get_events: Callable[[list[int]], list[Event]],
    *,
    lateness: float = 60.0,
    max_depth: int = 8,
    follow_bound: float = 900.0,
    trace: Callable[[str], None] | None = None,
) -> tuple[Evaluator, list[Firing]]:
    """An evaluator holding the committed state; ``trace`` narrates the replayed steps."""
    entries, steps = state.snapshot()
    evaluator = Evaluator(automations, entries, lateness=lateness, max_depth=max_depth, follow_bound=follow_bound)
    ids = [e for e, _, _ in steps if e is not None]
    events: dict[int, Event] = {}
    for start in range(0, len(ids), 900):
        events.update((e.id, e) for e in get_events(ids[start : start + 900]) if e.id is not None)
    evaluator.trace = trace
    return evaluator, replay(evaluator, steps, events)
