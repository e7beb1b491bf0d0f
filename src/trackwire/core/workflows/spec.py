"""A workflow's definition as plain data, in eventor's vocabulary.

A flow has **events** (names; an event may carry an *expression* over other events that raises it
automatically), **steps** (a callable or a shell command, run in a worker process), and
**associations** from an event to steps or further events, optionally delayed. A step's status
changes (ready, active, success, failure, complete) raise the events listed in its ``triggers``.

Expressions are data (:class:`Ev`, :class:`All`, :class:`AnyOf`), never ``eval``: ``(a, b)`` means
"a and b", ``or_(a, b)`` means "a or b", and they nest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "All",
    "AnyOf",
    "Assoc",
    "Ev",
    "Expr",
    "FlowSpec",
    "Replay",
    "RunMode",
    "StepSpec",
    "StepStatus",
    "evaluate",
    "events_in",
    "expr_from_json",
    "expr_to_json",
]


class StepStatus(StrEnum):
    READY = "ready"
    ACTIVE = "active"
    SUCCESS = "success"
    FAILURE = "failure"
    COMPLETE = "complete"  # success or failure: only used as a trigger


class Replay(StrEnum):
    """What a recovery run does with a step, by the step's last status in the recovered run."""

    RERUN = "rerun"
    SKIP = "skip"


class RunMode(StrEnum):
    RESTART = "restart"  # a new run
    RECOVER = "recover"  # a new run that skips or reruns each step of an earlier run by its last status
    CONTINUE = "continue"  # carry on an unfinished (or stopped) run where it left off


DEFAULT_RECOVERY: Mapping[StepStatus, Replay] = {
    StepStatus.READY: Replay.RERUN,
    StepStatus.ACTIVE: Replay.RERUN,
    StepStatus.FAILURE: Replay.RERUN,
    StepStatus.SUCCESS: Replay.SKIP,
}


@dataclass(frozen=True, slots=True)
class Ev:
    name: str


@dataclass(frozen=True, slots=True)
class All:
    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Expr, ...]


Expr = Ev | All | AnyOf


def evaluate(expr: Expr, triggered: set[str] | frozenset[str]) -> bool:
    if isinstance(expr, Ev):
        return expr.name in triggered
    if isinstance(expr, All):
        return all(evaluate(p, triggered) for p in expr.parts)
    return any(evaluate(p, triggered) for p in expr.parts)


def events_in(expr: Expr) -> set[str]:
    if isinstance(expr, Ev):
        return {expr.name}
    found: set[str] = set()
    for part in expr.parts:
        found |= events_in(part)
    return found


def expr_to_json(expr: Expr) -> Any:
    """``"name"``, ``{"all": [...]}`` or ``{"any": [...]}`` (also the TOML form)."""
    if isinstance(expr, Ev):
        return expr.name
    key = "all" if isinstance(expr, All) else "any"
    return {key: [expr_to_json(p) for p in expr.parts]}


def expr_from_json(value: Any) -> Expr:
    if isinstance(value, str):
        return Ev(value)
    if isinstance(value, list | tuple):
        return All(tuple(expr_from_json(v) for v in value))
    if isinstance(value, dict) and len(value) == 1:
        ((key, parts),) = value.items()
        if key in ("all", "and") and isinstance(parts, list | tuple):
            return All(tuple(expr_from_json(v) for v in parts))
        if key in ("any", "or") and isinstance(parts, list | tuple):
            return AnyOf(tuple(expr_from_json(v) for v in parts))
    raise ValueError(f"an event expression is a name, a list (all of), or {{'any': [...]}}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Assoc:
    """When ``source`` is raised, engage ``target`` (a step or an event) after ``delay`` seconds."""

    source: str
    target: str
    kind: str  # "step" | "event"
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class StepSpec:
    name: str
    target: Mapping[str, Any]  # how the worker finds the code: {"file"|"module", "qualname"} or {"command": [...]}
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    triggers: Mapping[StepStatus, tuple[str, ...]] = field(default_factory=dict)
    acquires: tuple[tuple[str, int], ...] = ()
    releases: tuple[tuple[str, int], ...] | None = None  # None: what it acquired
    recovery: Mapping[StepStatus, Replay] = field(default_factory=dict)
    max_attempts: int = 1
    backoff: tuple[float, float] = (1.0, 60.0)
    timeout: float | None = None
    stop_on_exception: bool | None = None  # None: the flow's setting

    def directive(self, status: StepStatus) -> Replay:
        return self.recovery.get(status, DEFAULT_RECOVERY.get(status, Replay.RERUN))

    @property
    def released(self) -> tuple[tuple[str, int], ...]:
        return self.acquires if self.releases is None else self.releases


@dataclass(frozen=True, slots=True)
class FlowSpec:
    name: str
    events: Mapping[str, Expr | None]
    steps: Mapping[str, StepSpec]
    assocs: tuple[Assoc, ...] = ()
    max_concurrent: int = 0  # <= 0: no limit
    stop_on_exception: bool = True
    starts: tuple[Mapping[str, Any], ...] = ()  # tracker events that start the flow (see definitions)

    def assocs_of(self, event: str) -> list[Assoc]:
        return [a for a in self.assocs if a.source == event]

    def expression_events(self) -> list[tuple[str, Expr]]:
        return [(name, expr) for name, expr in self.events.items() if expr is not None]

    def stops_on_exception(self, step: StepSpec) -> bool:
        return self.stop_on_exception if step.stop_on_exception is None else step.stop_on_exception

    def problems(self, pools: Mapping[str, int] | None = None) -> list[str]:
        """What is wrong with the definition (unknown names, impossible resource requests)."""
        out: list[str] = []
        for assoc in self.assocs:
            if assoc.source not in self.events:
                out.append(f"association from unknown event {assoc.source!r}")
            known = self.steps if assoc.kind == "step" else self.events
            if assoc.target not in known:
                out.append(f"association to unknown {assoc.kind} {assoc.target!r}")
            if assoc.delay < 0:
                out.append(f"association {assoc.source!r} -> {assoc.target!r} has a negative delay")
        for name, expr in self.expression_events():
            for used in sorted(events_in(expr) - set(self.events)):
                out.append(f"event {name!r} depends on unknown event {used!r}")
        for step in self.steps.values():
            for raised in _flatten(step.triggers.values()):
                if raised not in self.events:
                    out.append(f"step {step.name!r} triggers unknown event {raised!r}")
            for pool, amount in step.acquires:
                if pools is not None and pool not in pools:
                    out.append(f"step {step.name!r} acquires from unknown pool {pool!r}")
                elif pools is not None and amount > pools[pool]:
                    out.append(f"step {step.name!r} wants {amount} of pool {pool!r}, which holds {pools[pool]}")
        return out


def _flatten(groups: Iterable[tuple[str, ...]]) -> list[str]:
    return [name for group in groups for name in group]
