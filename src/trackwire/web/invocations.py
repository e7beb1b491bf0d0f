"""The dashboard's list of hosted-action invocations: who ran what on which selection, how it ended,
how long it took, and a link to each job's page (live progress while it runs).

- ``GET /invocations`` (page; refreshes itself every 2 s while a job runs) and
  ``GET /api/invocations?before=&limit=`` (JSON), newest first, paged by key (a job's ``seq``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from trackwire.web.action_jobs import job_view
from trackwire.web.pages import templates

if TYPE_CHECKING:
    from trackwire.web.auth import Auth, Principal
    from trackwire.web.backend import Backend

__all__ = ["invocations_page", "invocations_router"]

PAGE = 50
MAX_PAGE = 500
REFRESH_SECONDS = 2


def _when(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def _number(value: str | None, what: str, top: int | None = None) -> int | None:
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise HTTPException(400, f"{what} must be a whole number") from None
    if number < 1 or (top is not None and number > top):
        raise HTTPException(400, f"{what} must be 1 or more" + (f" and at most {top}" if top else ""))
    return number


async def invocations_page(b: Backend, before: int | None, limit: int = PAGE) -> dict[str, Any]:
    found = await b.call(b.jobs.recent, limit + 1, before)
    items = [job_view(j) | {"seq": j.seq, "created_at": _when(j.created)} for j in found[:limit]]
    return {
        "items": items,
        "next_before": found[limit - 1].seq if len(found) > limit else None,
        "active": any(not item["done"] for item in items),
    }


def invocations_router(backend: Backend, auth: Auth) -> APIRouter:
    router = APIRouter()
    t = templates()

    @router.get(
        "/invocations", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(auth.page_user)]
    )
    async def page(request: Request) -> HTMLResponse:
        user: Principal = request.state.principal
        found = await invocations_page(backend, _number(request.query_params.get("before"), "before"))
        partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "invocations"
        context = {
            "r": found,
            "user": user,
            "csrf": user.csrf,
            "mode": "daemon" if backend.live else "standalone",
            "page": "invocations",
            "refresh": REFRESH_SECONDS,
            "paged": "before" in request.query_params,
        }
        response = t.TemplateResponse(request, "_invocations.html" if partial else "invocations.html", context)
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get(
        "/api/invocations",
        tags=["actions"],
        summary="Hosted-action invocations, newest first",
        dependencies=[Depends(auth.api_user)],
    )
    async def api(request: Request) -> dict[str, Any]:
        p = request.query_params
        limit = _number(p.get("limit"), "limit", MAX_PAGE) or PAGE
        return await invocations_page(backend, _number(p.get("before"), "before"), limit)

    return router
