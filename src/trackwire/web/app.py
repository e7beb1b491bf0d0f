"""The ASGI app. For now: health and a JSON status; the dashboard and API grow here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from trackwire.__about__ import __version__
from trackwire.config import WebSettings

if TYPE_CHECKING:
    from trackwire.runtime.daemon import Daemon

__all__ = ["create_app"]


def create_app(daemon: Daemon, settings: WebSettings) -> FastAPI:
    app = FastAPI(title="Trackwire", version=__version__)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime": round(time.time() - daemon.started, 1)}

    return app
