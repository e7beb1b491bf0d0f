"""The dashboard: server-rendered pages (Jinja2), htmx for filtering, server-sent events for live parts.

Every page needs a login; every form that changes something is a POST carrying the CSRF token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from trackwire.__about__ import __version__
from trackwire.web import views
from trackwire.web.api import parse_after
from trackwire.web.auth import Auth, Principal
from trackwire.web.backend import Backend, UnknownGroup

__all__ = ["pages_router", "templates"]

TEMPLATES = Path(__file__).parent / "templates"
LIVE_INTERVAL = 2.0


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def sse_message(event: str, data: str) -> str:
    """One server-sent event; each line of ``data`` becomes a ``data:`` line."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(TEMPLATES))
    t.env.filters["pretty"] = _pretty
    t.env.globals["version"] = __version__
    return t


def _form_int(value: Any, what: str, *, required: bool = True) -> int | None:
    if value in (None, ""):
        if required:
            raise HTTPException(400, f"{what} is required")
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise HTTPException(400, f"{what} must be a whole number") from None
    if number < 1:
        raise HTTPException(400, f"{what} must be 1 or more")
    return number


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"not a date and time: {value!r}") from None


def pages_router(backend: Backend, auth: Auth) -> APIRouter:
    router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_user)])
    t = templates()

    def render(request: Request, name: str, **context: Any) -> HTMLResponse:
        user: Principal = request.state.principal
        context.update(user=user, csrf=user.csrf, mode="daemon" if backend.live else "standalone")
        return t.TemplateResponse(request, name, context)

    async def act(request: Request, fn: Any, *args: Any) -> Any:
        await auth.check_write(request, request.state.principal)
        try:
            return await backend.call(fn, *args)
        except UnknownGroup as exc:
            raise HTTPException(404, f"no group called {exc.args[0]!r}") from None

    def back(url: str, message: str) -> RedirectResponse:
        sep = "&" if "?" in url else "?"
        return RedirectResponse(f"{url}{sep}{urlencode({'done': message})}", status_code=303)

    @router.get("/", response_class=HTMLResponse)
    async def overview(
        request: Request,
    ) -> HTMLResponse:
        return render(request, "overview.html", o=await views.overview(backend), page="overview")

    @router.get("/live/overview")
    async def live(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            while not backend.stop.is_set():
                o = await views.overview(backend)
                yield sse_message("overview", t.get_template("_overview_live.html").render(o=o))
                try:
                    await asyncio.wait_for(backend.stop.wait(), LIVE_INTERVAL)
                except TimeoutError:
                    pass

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    @router.get("/events", response_class=HTMLResponse)
    async def events(
        request: Request,
    ) -> HTMLResponse:
        p = request.query_params
        filters = views.EventFilters(
            source=p.get("source") or None,
            type=p.get("type") or None,
            entity=p.get("entity") or None,
            project=p.get("project") or None,
            since=_when(p.get("since")),
            until=_when(p.get("until")),
            before=_form_int(p.get("before"), "before", required=False),
        )
        page = await views.events_page(backend, filters)
        partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "results"
        name = "_events_table.html" if partial else "events.html"
        return render(request, name, r=page, q=dict(p), page="events", urlencode=urlencode)

    @router.get("/events/{event_id}", response_class=HTMLResponse)
    async def event(request: Request, event_id: int) -> HTMLResponse:
        found = await views.event_detail(backend, event_id)
        if found is None:
            raise HTTPException(404, f"no event {event_id}")
        return render(request, "event.html", e=found, page="events")

    @router.get("/groups", response_class=HTMLResponse)
    async def groups(
        request: Request,
    ) -> HTMLResponse:
        return render(request, "groups.html", groups=await views.groups(backend), page="groups")

    @router.get("/groups/{name}", response_class=HTMLResponse)
    async def group(request: Request, name: str, after: int = 0) -> HTMLResponse:
        found = await views.group_detail(backend, name, after)
        if found is None:
            raise HTTPException(404, f"no group called {name!r}")
        done = request.query_params.get("done")
        return render(request, "group.html", g=found, page="groups", done=done)

    @router.post("/groups/{name}/reactivate")
    async def reactivate(request: Request, name: str) -> RedirectResponse:
        await act(request, backend.reactivate, name)
        return back(f"/groups/{name}", f"{name} reactivated")

    @router.post("/groups/{name}/replay")
    async def replay(request: Request, name: str) -> RedirectResponse:
        await auth.check_write(request, request.state.principal)
        form = await request.form()
        first = _form_int(form.get("first"), "first")
        last = _form_int(form.get("last"), "last", required=False)
        consumer = str(form.get("consumer") or "") or None
        n = await act(request, backend.replay_range, name, first, last, consumer)
        return back(f"/groups/{name}", f"queued {n} deliveries")

    @router.get("/deadletters", response_class=HTMLResponse)
    async def deadletters(request: Request, group: str | None = None, after: str | None = None) -> HTMLResponse:
        found = await views.dead_letters(backend, group or None, parse_after(after))
        done = request.query_params.get("done")
        return render(request, "deadletters.html", d=found, page="deadletters", done=done)

    @router.get("/deadletters/{group}/{event_id}", response_class=HTMLResponse)
    async def deadletter(request: Request, group: str, event_id: int) -> HTMLResponse:
        found = await views.dead_letter(backend, group, event_id)
        if found is None:
            raise HTTPException(404, f"no dead letter for event {event_id} in {group!r}")
        return render(request, "deadletter.html", dl=found, page="deadletters")

    @router.post("/deadletters/{group}/{event_id}/replay")
    async def replay_one(request: Request, group: str, event_id: int) -> RedirectResponse:
        n = await act(request, backend.replay_dead, group, [event_id])
        return back("/deadletters", f"replayed {n} dead letter(s) of {group}")

    @router.post("/deadletters/{group}/{event_id}/discard")
    async def discard_one(request: Request, group: str, event_id: int) -> RedirectResponse:
        n = await act(request, backend.discard_dead, group, [event_id])
        return back("/deadletters", f"discarded {n} dead letter(s) of {group}")

    @router.post("/deadletters/{group}/replay")
    async def replay_all(request: Request, group: str) -> RedirectResponse:
        n = await act(request, backend.replay_dead, group, None)
        return back("/deadletters", f"replayed {n} dead letter(s) of {group}")

    @router.post("/deadletters/{group}/discard")
    async def discard_all(request: Request, group: str) -> RedirectResponse:
        n = await act(request, backend.discard_dead, group, None)
        return back("/deadletters", f"discarded {n} dead letter(s) of {group}")

    return router
