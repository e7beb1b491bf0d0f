"""The one ASGI app the daemon serves: webhook intake, dashboard, JSON API, metrics, health."""

from __future__ import annotations
