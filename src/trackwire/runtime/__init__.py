"""The daemon: the log tail, group runners, worker processes, sources, signals and graceful stop."""

from __future__ import annotations
