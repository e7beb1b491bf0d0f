"""Dry runs: feed recorded events to a fresh evaluator on an event-time clock and say what would fire, when,
and (with a trace) why each event did or did not count. Used by ``trackwire automations test|explain``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackwire.core.event import Event, Ref
from trackwire.core.triggers import (
    Automation,
    CompoundTrigger,
    Evaluator,
    EventTrigger,
    Firing,
    SequenceTrigger,
    Trigger,
)

__all__ = ["Outcome", "describe", "dry_run", "read_events"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A firing the dry run found, and the time it would have been decided."""

    when: float
    firing: Firing


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, dict) and "$dt" in value:
        value = value["$dt"]
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_events(path: Path) -> list[Event]:
    """Events from a JSON-lines file (one envelope per line, as ``trackwire emit --json`` takes)."""
    events: list[Event] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        if "type" not in raw:
            raise ValueError(f"{path}:{number}: each event needs a 'type'")
        events.append(
            Event(
                id=int(raw.get("id", number)),
                source=str(raw.get("source", "recorded")),
                source_id=str(raw.get("source_id", number)),
                type=raw["type"],
                entity=Ref.from_json(raw.get("entity")),
                project=Ref.from_json(raw.get("project")),
                user=Ref.from_json(raw.get("user")),
                attribute=raw.get("attribute"),
                old=raw.get("old"),
                new=raw.get("new"),
                occurred=_when(raw["occurred"]) if raw.get("occurred") is not None else datetime.now(UTC),
                received=_when(raw["received"]) if raw.get("received") is not None else None,
                data=raw.get("data") or {},
                follows=raw.get("follows"),
                key=raw.get("key"),
            )
        )
    return events


def _longest(trigger: Trigger) -> float:
    if isinstance(trigger, EventTrigger):
        return trigger.within
    return max([trigger.within, *(_longest(t) for t in trigger.triggers)])


def dry_run(
    automations: Iterable[Automation],
    events: Sequence[Event],
    *,
    lateness: float = 60.0,
    follow_bound: float = 900.0,
    trace: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """Evaluate ``events`` in the given (arrival) order; the clock follows the newest event time seen."""
    automations = list(automations)
    if not events:
        return []
    evaluator = Evaluator(automations, lateness=lateness, follow_bound=follow_bound, trace=trace)
    clock = min(e.occurred.timestamp() for e in events)
    evaluator.start(clock)
    out: list[Outcome] = []

    def swept(now: float) -> None:
        out.extend(Outcome(f.window[1] + lateness if f.window[1] else now, f) for f in evaluator.sweep(now))

    for event in events:
        clock = max(clock, event.occurred.timestamp())
        swept(clock)
        out.extend(Outcome(clock, f) for f in evaluator.on_event(event, clock))
    horizon = max((_longest(a.trigger) for a in automations), default=0.0) + lateness
    swept(clock + horizon + 0.001)
    swept(clock + follow_bound + 0.001)
    return out


def describe(trigger: Trigger, indent: str = "") -> list[str]:
    """A human description of a trigger tree, one line per trigger."""
    if isinstance(trigger, CompoundTrigger):
        head = f"{indent}compound: {trigger.require} of {len(trigger.triggers)} within {trigger.within:g} s"
    elif isinstance(trigger, SequenceTrigger):
        head = f"{indent}sequence of {len(trigger.triggers)} within {trigger.within:g} s"
    else:
        parts = [trigger.posture, f"expect {list(trigger.expect) or 'any event'}"]
        if trigger.after:
            parts.append(f"after {list(trigger.after)}")
        parts.append(f"threshold {trigger.threshold}" + (f" within {trigger.within:g} s" if trigger.within else ""))
        if trigger.for_each:
            parts.append(f"for each {list(trigger.for_each)}")
        if trigger.match.items:
            parts.append("match " + ", ".join(p for p, _ in trigger.match.items))
        if trigger.where is not None:
            parts.append(f"where {trigger.where}")
        return [indent + "; ".join(parts)]
    lines = [head]
    for child in trigger.triggers:
        lines.extend(describe(child, indent + "  "))
    return lines
