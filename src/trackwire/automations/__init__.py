"""Declarative automations: definitions from files, the evaluation service, durable state, actions."""

from __future__ import annotations
