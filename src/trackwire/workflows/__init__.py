"""Event-driven workflows: events, steps, associations (optionally delayed), joins, sequences, recovery.

The model is eventor's; the engine is Trackwire's (the log, the worker processes). See docs/workflows.md.
"""

from __future__ import annotations

from trackwire.core.workflows.spec import All, AnyOf, Ev, Replay, RunMode, StepStatus
from trackwire.workflows.api import (
    RUN_CONTINUE,
    RUN_RECOVER,
    RUN_RESTART,
    STEP_ACTIVE,
    STEP_COMPLETE,
    STEP_FAILURE,
    STEP_READY,
    STEP_RERUN,
    STEP_SKIP,
    STEP_SUCCESS,
    Workflow,
)
from trackwire.workflows.definition import ResourcePool, StepRef, and_, or_
from trackwire.workflows.steps import StepContext, current

__all__ = [
    "RUN_CONTINUE",
    "RUN_RECOVER",
    "RUN_RESTART",
    "STEP_ACTIVE",
    "STEP_COMPLETE",
    "STEP_FAILURE",
    "STEP_READY",
    "STEP_RERUN",
    "STEP_SKIP",
    "STEP_SUCCESS",
    "All",
    "AnyOf",
    "Ev",
    "Replay",
    "ResourcePool",
    "RunMode",
    "StepContext",
    "StepRef",
    "StepStatus",
    "Workflow",
    "and_",
    "current",
    "or_",
]
