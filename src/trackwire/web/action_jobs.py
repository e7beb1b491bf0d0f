"""The pages of hosted-action jobs: where the user who started a long action watches it.

- ``GET /actions/jobs/{id}?key=``: the job's page (state, a progress bar, the message, the result).
  While the job runs, htmx replaces its progress part every second from
  ``GET /actions/jobs/{id}/progress?key=``; once it ends the polling stops.
- ``GET /actions/jobs/{id}/status?key=``: the same as JSON (Kitsu and scripts).

The ``key`` is the job's own secret (the link the action answered with carries it): whoever started
the action can follow it without a dashboard login; a dashboard login (cookie or bearer token) is
accepted too, for the dashboard's list of invocations. No key and no login: 401; a wrong key or an
unknown job: 404, the same answer, so job ids cannot be probed.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from trackwire.actions.jobs import job_url
from trackwire.core.jobs import Job
from trackwire.web.pages import templates

if TYPE_CHECKING:
    from trackwire.web.auth import Auth
    from trackwire.web.backend import Backend

__all__ = ["action_jobs_router", "job_json", "job_url", "job_view"]

POLL_SECONDS = 1


def job_view(job: Job) -> dict[str, Any]:
    """What the pages and the dashboard show of a job (never its key)."""
    inv = job.invocation
    result = job.result or {}
    return {
        "id": job.id,
        "action": job.action,
        "tracker": job.tracker,
        "state": job.state,
        "done": job.done,
        "background": job.background,
        "progress": job.progress,
        "percent": round(job.progress * 100),
        "message": job.message,
        "result": {"success": result.get("success"), "message": result.get("message")} if job.result else None,
        "error": job.error,
        "user": job.user,
        "entity_type": inv.get("entity_type"),
        "selected": list(inv.get("selected") or ()),
        "values": inv.get("values"),
        "attempts": job.attempts,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "duration": job.duration,
    }


def job_json(job: Job, request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return job_view(job) | {"url": base + job_url(job), "status_url": base + job_url(job, "/status")}


def action_jobs_router(backend: Backend, auth: Auth | None) -> APIRouter:
    router = APIRouter(tags=["actions"])
    t = templates()

    async def find(request: Request, job_id: str) -> tuple[Job | None, int, str, str]:
        """The job, or why not: (job, status, message, the key to put in poll URLs)."""
        key = request.query_params.get("key")
        logged_in = auth is not None and auth.principal(request) is not None
        if not key and not logged_in:
            return None, 401, "this job's page needs its key (the link the action answered with) or a login", ""
        job = await asyncio.to_thread(backend.jobs.get, job_id)
        if job is not None and key and hmac.compare_digest(key.encode(), job.key.encode()):
            return job, 200, "", key
        if job is not None and not key and logged_in:
            return job, 200, "", ""
        return None, 404, "no such job (or the key is wrong)", ""

    def page(request: Request, name: str, job: Job | None, status: int, message: str, key: str) -> HTMLResponse:
        context = {"job": job_view(job) if job else None, "status": status, "message": message}
        context["poll"] = f"/actions/jobs/{job.id}/progress" + (f"?key={quote(key)}" if key else "") if job else ""
        context["interval"] = POLL_SECONDS
        response = t.TemplateResponse(request, name, context, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/actions/jobs/{job_id}", response_class=HTMLResponse, summary="A hosted-action job's page")
    async def job_page(request: Request, job_id: str) -> HTMLResponse:
        return page(request, "action_job.html", *await find(request, job_id))

    @router.get("/actions/jobs/{job_id}/progress", response_class=HTMLResponse, include_in_schema=False)
    async def job_progress(request: Request, job_id: str) -> HTMLResponse:
        return page(request, "_action_job_progress.html", *await find(request, job_id))

    @router.get("/actions/jobs/{job_id}/status", summary="A hosted-action job's state and progress")
    async def job_status(request: Request, job_id: str) -> Response:
        job, status, message, _ = await find(request, job_id)
        if job is None:
            return JSONResponse({"error": message}, status, headers={"Cache-Control": "no-store"})
        return JSONResponse(job_json(job, request), headers={"Cache-Control": "no-store"})

    return router
