"""Why an automation fired or did not, from what the daemon recorded rather than from a replay on empty
state: its firings (with the events that caused them and each action's outcome), its committed trigger state
(checkpoint plus journal), whether the daemon evaluated an event, and the trigger's conditions applied to it.

Used by ``trackwire automations explain NAME --event ID`` (or a range of ids or times).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from trackwire.automations.state import FiringRecord
from trackwire.core.event import Event
from trackwire.core.triggers import Automation, CompoundTrigger, EventTrigger, SequenceTrigger, StateKey, Trigger

__all__ = ["Recorded", "explain_event", "held_ids", "leaves", "summary"]


@dataclass
class Recorded:
    """What the daemon committed about one automation."""

    automation: Automation
    firings: list[FiringRecord]
    state: Mapping[StateKey, dict[str, Any]]
    position: int | None  # the automations group's durable position (every event up to it was evaluated)
    applied: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # the journal replayed over the checkpoint, narrated


def leaves(trigger: Trigger, path: str = "t") -> Iterator[tuple[str, EventTrigger]]:
    if isinstance(trigger, EventTrigger):
        yield path, trigger
        return
    for index, child in enumerate(trigger.triggers):
        yield from leaves(child, f"{path}.{index}")


def held_ids(value: Mapping[str, Any]) -> set[int]:
    """The event ids a state entry holds (a bucket's events, a window's opener and counted events, a
    compound's fired children)."""
    found: set[int] = set()
    for item in value.get("times", ()):
        found.add(int(item[1]))
    for window in value.get("windows", ()):
        found.update(int(i) for i in window.get("ev", ()))
        if window.get("by"):
            found.add(int(window["by"]))
    for child in value.get("children", {}).values():
        found.update(int(i) for i in child[1])
    return found


def _stamp(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


def _threshold(trigger: Trigger, path: str) -> str:
    node: Trigger = trigger
    for part in path.split(".")[1:]:
        assert not isinstance(node, EventTrigger)
        node = node.triggers[int(part)]
    if isinstance(node, EventTrigger):
        return f"of {node.threshold}" + (f" within {node.within:g} s" if node.within else "")
    if isinstance(node, CompoundTrigger):
        return f"children fired, {node.require} of {len(node.triggers)} required"
    assert isinstance(node, SequenceTrigger)
    return f"children fired in order, {len(node.triggers)} required"


def _firing_line(record: FiringRecord) -> str:
    actions = ", ".join(f"{o.get('name', '?')} {o.get('status')}" for o in record.outcomes) or "no action finished"
    return (
        f"fired: firing {record.id} at {_stamp(record.at)} [{record.key}] ({record.reason}) with events "
        f"{' '.join(map(str, record.events))}; {record.status}: {actions}"
    )


def explain_event(recorded: Recorded, event: Event, now: float) -> list[str]:
    """Every recorded fact about ``event`` and this automation, one line each."""
    ident = event.id or 0
    automation = recorded.automation
    lines = [f"event {ident} ({event.type}, occurred {event.occurred.isoformat(timespec='seconds')})"]
    evaluated = ident in recorded.applied or (recorded.position is not None and ident <= recorded.position)
    if recorded.position is None:
        lines.append("  the daemon has not evaluated automations on this store yet")
    elif not evaluated:
        lines.append(f"  not evaluated yet: the automations group is at event {recorded.position}")
    matched = False
    for path, trigger in leaves(automation.trigger):
        problem = trigger.why_not(event, now)
        if problem is None:
            matched = True
            lines.append(f"  trigger {path}: matches")
        else:
            lines.append(f"  trigger {path}: does not match: {problem}")
    fired = [r for r in recorded.firings if ident in r.events or r.triggering_event == ident]
    lines.extend("  " + _firing_line(r) for r in fired)
    held = [(k, v) for k, v in recorded.state.items() if ident in held_ids(v)]
    for (_, path, key), value in held:
        count = len(held_ids(value))
        lines.append(f"  waiting in {path} [{key}]: {count} {_threshold(automation.trigger, path)} so far")
    narrated = [n for n in recorded.notes if f"event {ident} " in n + " " or f"event {ident}:" in n]
    lines.extend(f"  journal: {n}" for n in narrated)
    if matched and evaluated and not fired and not held and not narrated:
        lines.append(
            "  counted, but in no firing and no open bucket now: its window passed without reaching the "
            "threshold (or it arrived later than the allowed lateness)"
        )
    return lines


def summary(recorded: Recorded, events: Sequence[Event], now: float) -> list[str]:
    """One line per event of a range: fired, waiting, not matching, not evaluated, or counted and expired."""
    out: list[str] = []
    for event in events:
        lines = explain_event(recorded, event, now)
        verdict = [line.strip() for line in lines[1:] if line.strip().startswith(("fired", "waiting"))]
        if not verdict:
            verdict = [line.strip() for line in lines[1:] if "not evaluated" in line or "counted, but" in line]
        if not verdict:
            verdict = [line.strip() for line in lines[1:] if "does not match" in line][:1]
        out.append(f"{lines[0]}: {'; '.join(verdict) or 'matches'}")
    return out
