"""Declarative triggers, evaluated as pure logic: events and the time in, firings out."""

from __future__ import annotations

from trackwire.core.triggers.evaluator import Evaluator, Firing, StateKey, event_depth, event_origin
from trackwire.core.triggers.model import Automation, CompoundTrigger, EventTrigger, SequenceTrigger, Trigger
from trackwire.core.triggers.predicates import LabelSpec, Predicate, PredicateError, parse_predicate

__all__ = [
    "Automation",
    "CompoundTrigger",
    "Evaluator",
    "EventTrigger",
    "Firing",
    "LabelSpec",
    "Predicate",
    "PredicateError",
    "SequenceTrigger",
    "StateKey",
    "Trigger",
    "event_depth",
    "event_origin",
    "parse_predicate",
]
