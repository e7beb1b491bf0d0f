"""Triggers as plain data: event triggers (reactive or proactive), compound and sequence triggers.

Built from an automation file by :func:`trackwire.automations.definitions.load_file`; evaluated by
:class:`trackwire.core.triggers.evaluator.Evaluator`. Nothing here does I/O.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Literal

from trackwire.core.event import Event
from trackwire.core.matching import _MISSING, lookup_path
from trackwire.core.triggers.predicates import LabelSpec, Predicate, related_resources, related_why_not, resolve

__all__ = ["Automation", "CompoundTrigger", "EventTrigger", "SequenceTrigger", "Trigger", "bucket_key"]

Posture = Literal["reactive", "proactive"]


def _glob_any(value: str, patterns: tuple[str, ...]) -> bool:
    return any(value == p or fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclass(frozen=True, slots=True)
class EventTrigger:
    """Count ``expect`` events (per ``for_each`` key) and fire on presence (reactive) or absence (proactive).

    * reactive: fire when ``threshold`` expected events occur within ``within`` seconds (``within = 0``:
      no time limit, so ``threshold = 1`` fires on every match). With ``after``, counting starts at an
      ``after`` event and lasts ``within`` seconds.
    * proactive: fire when fewer than ``threshold`` expected events occur in a window of ``within`` seconds.
      A window opens at an ``after`` event; without ``after`` but with ``for_each``, each expected event
      opens the next window for its key (a heartbeat); with neither, windows run back to back from load.
    """

    expect: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    match: LabelSpec = field(default_factory=LabelSpec)
    match_related: tuple[LabelSpec, ...] = ()
    where: Predicate | None = None
    for_each: tuple[str, ...] = ()
    posture: Posture = "reactive"
    threshold: int = 1
    within: float = 0.0

    def type_patterns(self) -> tuple[str, ...] | None:
        if not self.expect:
            return None
        return tuple(dict.fromkeys((*self.expect, *self.after)))

    def expects(self, event: Event) -> bool:
        return not self.expect or _glob_any(event.type, self.expect)

    def opens(self, event: Event) -> bool:
        return bool(self.after) and _glob_any(event.type, self.after)

    def why_not(self, event: Event, now: float) -> str | None:
        """``None`` if the event concerns this trigger (its type, labels and predicates), else why not."""
        if not self.expects(event) and not self.opens(event):
            wanted = [*self.expect, *self.after]
            return f"type {event.type!r} is not in expect/after {wanted}"
        problem = self.match.why_not(lambda path: lookup_path(event, path))
        if problem is not None:
            return f"match: {problem}"
        problem = related_why_not(self.match_related, event)
        if problem is not None:
            return f"match_related: {problem}"
        if self.where is not None:
            problem = self.where.why_not(event, now)
            if problem is not None:
                return f"where: {problem}"
        return None

    def matches(self, event: Event, now: float) -> bool:
        if not self.match.matches_event(event):
            return False
        if self.match_related and related_why_not(self.match_related, event) is not None:
            return False
        return self.where is None or self.where.holds(event, now)


def bucket_key(trigger: EventTrigger, event: Event) -> str:
    """The ``for_each`` key of an event: its values at the trigger's paths (missing: empty), joined."""
    if not trigger.for_each:
        return ""
    parts: list[str] = []
    for path in trigger.for_each:
        if path.startswith("related:"):
            _, role, label = ([*path.split(":", 2), "", ""])[:3]
            found = next((r.get(label) for r in related_resources(event) if r.get("role") == role), None)
            parts.append("" if found is None else str(found))
            continue
        value = resolve(event, path)
        parts.append("" if value is _MISSING or value is None else str(value))
    return "|".join(parts)


@dataclass(frozen=True, slots=True)
class CompoundTrigger:
    """Fire when ``require`` of the child triggers (``all``, ``any`` or a number) fired within ``within`` s."""

    triggers: tuple[Trigger, ...]
    require: int
    within: float = 0.0


@dataclass(frozen=True, slots=True)
class SequenceTrigger:
    """Fire when the child triggers fired in the declared order (by event time), all within ``within`` s."""

    triggers: tuple[Trigger, ...]
    within: float = 0.0


Trigger = EventTrigger | CompoundTrigger | SequenceTrigger


@dataclass(frozen=True, slots=True)
class Automation:
    """A named trigger with its actions (action specs stay plain data; the runtime builds them)."""

    name: str
    trigger: Trigger
    actions: tuple[dict[str, Any], ...] = ()
    enabled: bool = True
    description: str = ""
    allow_self: bool = False
    source: str = ""
