"""``POST /hooks/shotgrid``: the ShotGrid webhook intake.

Verifies ``X-SG-SIGNATURE`` (HMAC-SHA1 of the raw body with the webhook's secret token; 401 when
missing or wrong), turns single or batched deliveries into ``EventLogEntry`` events and only
appends them, so the answer comes well inside ShotGrid's 6 s limit. Events share the poller's
``(source, source_id)``: an event seen both ways is stored, and delivered, once. A malformed body
is answered 400 with the reason; the intake never answers 500 for a body.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trackwire.sources.shotgrid import event_from_entry
from trackwire.sources.shotgrid_webhook import WebhookError, entries_from_body, signature_ok

if TYPE_CHECKING:
    from trackwire.web.backend import Backend

__all__ = ["shotgrid_router"]

log = logging.getLogger("trackwire.web.shotgrid")


def shotgrid_router(backend: Backend) -> APIRouter:
    router = APIRouter()

    @router.post("/hooks/shotgrid", response_model=None, tags=["webhooks"], summary="ShotGrid webhook deliveries")
    async def shotgrid_webhook(request: Request) -> JSONResponse:
        daemon = backend.daemon
        settings = None if daemon is None else daemon.settings.shotgrid
        if daemon is None or settings is None or settings.webhook_secret is None:
            return JSONResponse({"error": "the ShotGrid webhook intake is off (set shotgrid.webhook_secret)"}, 404)
        body = await request.body()
        if not signature_ok(body, request.headers.get("x-sg-signature"), settings.webhook_secret.get_secret_value()):
            log.warning("ShotGrid webhook delivery refused: missing or wrong X-SG-SIGNATURE")
            return JSONResponse({"error": "missing or invalid X-SG-SIGNATURE"}, 401)
        try:
            entries = entries_from_body(body)
        except WebhookError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        store = daemon.store
        if store is None:
            return JSONResponse({"error": "the daemon is starting; ShotGrid will retry"}, 503)
        events = [event_from_entry(entry, settings.source) for entry in entries]
        try:
            result = await asyncio.to_thread(store.append, events)
        except Exception as exc:
            log.exception("could not store a ShotGrid webhook delivery")
            return JSONResponse({"error": f"could not store the delivery: {type(exc).__name__}"}, 503)
        if daemon.tail is not None and result.new:
            daemon.tail.nudge()
        body_out: dict[str, Any] = {"received": len(events), "new": len(result.new)}
        return JSONResponse(body_out, 200)

    return router
