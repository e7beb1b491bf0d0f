"""Loading user code: plugin files, their order, hot reload and the compatibility layers."""

from __future__ import annotations
