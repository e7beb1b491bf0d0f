"""The one ASGI app: dashboard, JSON API, webhook intake, /metrics, /healthz and /readyz.

``create_app(daemon, settings)`` serves a running daemon (live state and the store);
``create_store_app(store, settings)`` serves a store alone (``trackwire web``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from trackwire.__about__ import __version__
from trackwire.actions.hosted import Action
from trackwire.config import HostedActionsSettings, WebSettings
from trackwire.ports import Store
from trackwire.web.action_jobs import action_jobs_router
from trackwire.web.actions import actions_router
from trackwire.web.api import api_router
from trackwire.web.auth import COOKIE, Auth, NeedLogin
from trackwire.web.backend import Backend
from trackwire.web.headers import SecurityHeaders, frame_origins
from trackwire.web.hooks import hooks_router
from trackwire.web.invocations import invocations_router
from trackwire.web.kitsu_cors import KitsuActionCors
from trackwire.web.metrics import Metrics
from trackwire.web.pages import pages_router, templates
from trackwire.web.shotgrid_hooks import shotgrid_router
from trackwire.web.workflows import workflows_router

if TYPE_CHECKING:
    from trackwire.runtime.daemon import Daemon

__all__ = ["create_app", "create_store_app"]

STATIC = Path(__file__).parent / "static"


def _safe_next(value: str | None) -> str:
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def create_app(daemon: Daemon, settings: WebSettings) -> FastAPI:
    """The app of a running daemon."""
    return build_app(Backend.for_daemon(daemon), settings)


def create_store_app(store: Store, settings: WebSettings, *, shotgrid_site: str | None = None) -> FastAPI:
    """The app for a store alone: no live state; actions are written to the store for a daemon to pick up.

    ``shotgrid_site`` (``[shotgrid] site``) may frame the action pages, like ``[web] frame_ancestors``.
    """
    return build_app(Backend.for_store(store), settings, shotgrid_site=shotgrid_site)


def build_app(
    backend: Backend,
    settings: WebSettings,
    *,
    actions: Mapping[str, Action] | None = None,
    action_settings: HostedActionsSettings | None = None,
    shotgrid_site: str | None = None,
) -> FastAPI:
    """The app; ``actions`` and ``action_settings`` replace the daemon's ``[hosted_actions]``, ``shotgrid_site``
    its ``[shotgrid] site`` (tests, embedding). The action pages may be framed by that site's origin and by
    ``settings.frame_ancestors`` (see :mod:`trackwire.web.headers`)."""
    app = FastAPI(
        title="Trackwire",
        version=__version__,
        description="Dashboard data, operator actions and webhook intake of a Trackwire daemon.",
        docs_url=None,
        redoc_url=None,
    )
    auth = Auth(settings)
    metrics = Metrics()
    app.state.backend = backend
    app.state.metrics = metrics
    app.state.auth = auth
    try:
        metrics.start_at(backend.store.last_id())
    except Exception:  # the store may open later; counting then starts at the first scrape
        pass
    if shotgrid_site is None and backend.daemon is not None:
        shotgrid_site = backend.daemon.settings.shotgrid.site
    app.add_middleware(SecurityHeaders, frame_ancestors=frame_origins(shotgrid_site, settings.frame_ancestors))
    if action_settings is not None:
        kitsu_origins = action_settings.kitsu_origins
    else:
        kitsu_origins = backend.daemon.settings.hosted_actions.kitsu_origins if backend.daemon is not None else ()
    app.add_middleware(KitsuActionCors, origins=lambda: kitsu_origins)  # is_ajax custom actions from Kitsu's page
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    page_templates = templates()

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin) -> Response:
        return RedirectResponse("/login?" + urlencode({"next": exc.next_url}), status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api")
        if wants_html:
            return page_templates.TemplateResponse(
                request, "error.html", {"status": exc.status_code, "detail": exc.detail}, status_code=exc.status_code
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime": round(time.time() - backend.started, 1)}

    @app.get("/readyz", tags=["operations"], summary="The store is open and every group has its worker")
    async def readyz() -> JSONResponse:
        ready = backend.ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (needs a login or token)")
    async def metrics_endpoint(request: Request) -> Response:
        auth.api_user(request)
        return Response(await metrics.render(backend), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/", failed: int = 0) -> HTMLResponse:
        context = {"next": _safe_next(next), "failed": bool(failed), "configured": auth.configured}
        return page_templates.TemplateResponse(request, "login.html", context)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if not auth.same_origin(request):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        form = await request.form()
        username = str(form.get("username") or "")
        password = str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or "/"))
        if not auth.check_login(username, password):
            return RedirectResponse("/login?" + urlencode({"next": target, "failed": 1}), status_code=303)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            auth.issue(username or "token"),
            max_age=int(settings.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        user = auth.principal(request)
        if user is not None:
            await auth.check_write(request, user)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    app.include_router(api_router(backend, auth))
    app.include_router(shotgrid_router(backend))  # before the generic /hooks/{name}
    app.include_router(actions_router(backend, actions, settings=action_settings))
    app.include_router(action_jobs_router(backend, auth))
    app.include_router(hooks_router(backend, settings))
    app.include_router(invocations_router(backend, auth))
    app.include_router(workflows_router(backend, auth))
    app.include_router(pages_router(backend, auth))
    return app
