"""The workflow model and state machine (pure: no I/O, no clock reads)."""

from __future__ import annotations

from trackwire.core.workflows.machine import Machine
from trackwire.core.workflows.spec import (
    All,
    AnyOf,
    Assoc,
    Ev,
    Expr,
    FlowSpec,
    Replay,
    RunMode,
    StepSpec,
    StepStatus,
    evaluate,
)
from trackwire.core.workflows.state import Record, Run, apply

__all__ = [
    "All",
    "AnyOf",
    "Assoc",
    "Ev",
    "Expr",
    "FlowSpec",
    "Machine",
    "Record",
    "Replay",
    "Run",
    "RunMode",
    "StepSpec",
    "StepStatus",
    "apply",
    "evaluate",
]
