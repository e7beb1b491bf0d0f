"""Workflows on the dashboard and in the JSON API: flows, runs, one run drawn as a graph, and the run
actions of ``trackwire workflows`` (retry, continue, cancel, start).

Runs are read from the store (``trackwire.workflows.runs``), so the pages work the same inside the
daemon and with ``trackwire web`` alone. Actions append the same request events as the CLI; the
daemon's workflow service carries them out (at once when it runs in this process, else within a
second).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from trackwire.web.auth import Auth, Principal
from trackwire.web.flowgraph import layout
from trackwire.web.pages import sse_message, templates

if TYPE_CHECKING:
    from trackwire.store.sqlite.workflow_runs import SqliteWorkflowRuns
    from trackwire.web.backend import Backend

__all__ = ["workflows_router"]

STATUSES = ("running", "success", "failure", "cancelled")
ACTIONS = ("retry", "continue", "cancel")
LIVE_INTERVAL = 1.0
KEEPALIVE = 15.0
LIST_LIMIT = 100


class StartRequest(BaseModel):
    flow: str = Field(description="the flow to start")
    events: list[str] = Field(min_length=1, description="events to raise")
    sequence: str = Field("", description="the run's sequence, e.g. shot:123")


class Requested(BaseModel):
    requested: str
    run: str | None
    event_id: int


class _Runs:
    """The workflow-runs reader of the backend's store, opened on first use."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._runs: SqliteWorkflowRuns | None = None
        self._lock = threading.Lock()

    def get(self) -> SqliteWorkflowRuns:
        with self._lock:
            if self._runs is None:
                path = getattr(self.backend.store, "path", None)
                if not isinstance(path, Path):
                    raise HTTPException(501, "workflow runs are kept in the SQLite store only")
                from trackwire.store.sqlite.workflow_runs import SqliteWorkflowRuns

                self._runs = SqliteWorkflowRuns(path)
            return self._runs


def _service(backend: Backend) -> Any:
    return None if backend.daemon is None else backend.daemon.workflows


def flows_of(backend: Backend, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The flows the daemon has loaded (with their definition versions), or, without a daemon, the
    flows the listed runs belong to."""
    from trackwire.workflows.definition import flow_to_json
    from trackwire.workflows.runs import definition_version

    service = _service(backend)
    if service is None:
        names = sorted({r["flow"] for r in runs})
        return {"live": False, "flows": [{"name": n} for n in names], "pools": {}}
    flows = []
    for name, flow in sorted(service.flows.items()):
        raw = flow_to_json(flow)
        flows.append(
            {
                "name": name,
                "version": definition_version(raw),
                "events": len(flow.events),
                "steps": len(flow.steps),
                "starts": sorted({t for s in flow.starts for t in s.get("types", ())}),
                "max_concurrent": flow.max_concurrent,
            }
        )
    return {"live": True, "flows": flows, "pools": dict(service.machine.pools)}


def _duration(view: dict[str, Any], seq: dict[str, Any]) -> list[dict[str, Any]]:
    """The step rows of one sequence, in definition order (steps not reached included)."""
    rows = []
    for name in view["graph"]["steps"]:
        info = seq.get("steps", {}).get(name)
        row: dict[str, Any] = {"name": name, "status": "pending", "attempt": 0, "failures": 0, "took": None}
        if info is not None:
            row.update(info)
            if info.get("started") is not None and info.get("finished") is not None:
                row["took"] = info["finished"] - info["started"]
        rows.append(row)
    return rows


def _clock(stamp: float | None) -> str:
    """A record's time (seconds since the epoch) as UTC ``HH:MM:SS.mmm``."""
    if stamp is None:
        return ""
    return datetime.fromtimestamp(float(stamp), UTC).strftime("%H:%M:%S.%f")[:-3]


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def workflows_router(backend: Backend, auth: Auth) -> APIRouter:
    router = APIRouter()
    pages = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_user)])
    api = APIRouter(prefix="/api/workflows", tags=["workflows"], dependencies=[Depends(auth.api_user)])
    t = templates()
    t.env.filters["clock"] = _clock
    t.env.filters["seconds"] = _seconds
    reader = _Runs(backend)

    def runs() -> SqliteWorkflowRuns:
        return reader.get()

    async def run_list(flow: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
        from trackwire.workflows.runs import list_runs

        if status and status not in STATUSES:
            raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
        return await backend.call(list_runs, runs(), flow=flow or None, status=status or None, limit=limit)

    async def run_view(run_id: str) -> dict[str, Any]:
        from trackwire.workflows.runs import run_view as read

        view = await backend.call(read, runs(), run_id)
        if view is None:
            raise HTTPException(404, f"no run {run_id!r}")
        return view

    async def append_request(kind: str, data: dict[str, Any]) -> int:
        from trackwire.workflows.intake import request_event

        result = await backend.call(backend.store.append, [request_event(kind, data, source="trackwire.web")])
        if backend.daemon is not None:
            backend.daemon.notify_appended()
        return int(result.new[0])

    async def act(kind: str, run_id: str) -> int:
        if kind not in ACTIONS:
            raise HTTPException(404, f"no action {kind!r} (known: {', '.join(ACTIONS)})")
        await run_view(run_id)  # 404 for an unknown run
        return await append_request(kind, {"run": run_id})

    def drawing(view: dict[str, Any], seq_name: str | None) -> dict[str, Any]:
        sequences = view["sequences"]
        if seq_name not in sequences:
            seq_name = next(iter(sequences), None)
        seq = sequences.get(seq_name, {}) if seq_name is not None else {}
        return {
            "v": view,
            "seq": seq_name,
            "graph": layout(view["graph"], seq),
            "steps": _duration(view, seq),
            "raised": seq.get("events", {}),
        }

    def render(request: Request, name: str, **context: Any) -> HTMLResponse:
        user: Principal = request.state.principal
        context.update(user=user, csrf=user.csrf, mode="daemon" if backend.live else "standalone", page="workflows")
        return t.TemplateResponse(request, name, context)

    # -- pages -----------------------------------------------------------------------------------

    @pages.get("/workflows", response_class=HTMLResponse)
    async def workflows_page(request: Request, flow: str = "", status: str = "") -> HTMLResponse:
        found = await run_list(flow, status, LIST_LIMIT)
        everything = found if not (flow or status) else await run_list(None, None, LIST_LIMIT)
        partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "runs"
        name = "_workflow_runs.html" if partial else "workflows.html"
        return render(
            request, name, runs=found, f=flows_of(backend, everything), q={"flow": flow, "status": status},
            statuses=STATUSES, urlencode=urlencode, done=request.query_params.get("done"),
        )  # fmt: skip

    @pages.get("/workflows/runs/{run_id}", response_class=HTMLResponse)
    async def run_page(request: Request, run_id: str, seq: str | None = None) -> HTMLResponse:
        view = await run_view(run_id)
        return render(request, "workflow_run.html", **drawing(view, seq), done=request.query_params.get("done"))

    @pages.get("/live/workflows/runs/{run_id}")
    async def live_run(request: Request, run_id: str, seq: str | None = None) -> Response:
        await run_view(run_id)
        csrf = request.state.principal.csrf
        partial = t.get_template("_workflow_run_live.html")

        async def stream() -> AsyncIterator[str]:
            last = ""
            quiet = 0.0
            while not backend.stop.is_set():
                if await request.is_disconnected():
                    return
                html = partial.render(**drawing(await run_view(run_id), seq), csrf=csrf)
                if html != last or quiet >= KEEPALIVE:
                    yield sse_message("run", html)
                    last, quiet = html, 0.0
                try:
                    await asyncio.wait_for(backend.stop.wait(), LIVE_INTERVAL)
                except TimeoutError:
                    quiet += LIVE_INTERVAL

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    @pages.post("/workflows/runs/{run_id}/{kind}")
    async def run_action(request: Request, run_id: str, kind: str) -> RedirectResponse:
        await auth.check_write(request, request.state.principal)
        event_id = await act(kind, run_id)
        message = f"{kind} of {run_id} requested (event {event_id})"
        return RedirectResponse(f"/workflows/runs/{run_id}?{urlencode({'done': message})}", status_code=303)

    # -- JSON ------------------------------------------------------------------------------------

    async def writer(request: Request) -> None:
        await auth.check_write(request, request.state.principal)

    write = [Depends(writer)]

    @api.get("", summary="The flows the daemon has loaded, with their definition versions, and the pools")
    async def api_flows() -> dict[str, Any]:
        return flows_of(backend, await run_list(None, None, LIST_LIMIT))

    @api.get("/runs", summary="Runs, newest first, by flow and/or status")
    async def api_runs(flow: str | None = None, status: str | None = None, limit: int = 50) -> dict[str, Any]:
        return {"runs": await run_list(flow, status, max(1, min(limit, 1000)))}

    @api.get("/runs/{run_id}", summary="One run: its graph, each step's state, timing and output, its timers")
    async def api_run(run_id: str) -> dict[str, Any]:
        return await run_view(run_id)

    @api.post("/runs/{run_id}/{kind}", dependencies=write, summary="retry, continue or cancel a run (as the CLI)")
    async def api_action(run_id: str, kind: str) -> Requested:
        return Requested(requested=kind, run=run_id, event_id=await act(kind, run_id))

    @api.post("/start", dependencies=write, summary="Start a run of a flow (as `trackwire workflows start`)")
    async def api_start(body: StartRequest) -> Requested:
        service = _service(backend)
        if service is not None and body.flow not in service.flows:
            known = ", ".join(sorted(service.flows)) or "none"
            raise HTTPException(404, f"no flow called {body.flow!r} is loaded (known: {known})")
        triggers = [[body.sequence, e] for e in body.events]
        event_id = await append_request("start", {"flow": body.flow, "triggers": triggers})
        return Requested(requested="start", run=f"{body.flow}-{event_id}", event_id=event_id)

    router.include_router(api)
    router.include_router(pages)
    return router
