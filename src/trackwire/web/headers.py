"""The security headers of every answer, and the one exception: the pages ShotGrid's modal overlay frames.

Every answer carries a Content-Security-Policy ending in ``frame-ancestors 'none'``, ``X-Frame-Options:
DENY``, ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``: no page of the
dashboard, the API or the login may be shown inside another site's frame (clickjacking).

The pages an action menu item opens (``FRAMEABLE``: the action's form and result pages, and the job
pages a background action redirects to) may be framed by the origins :func:`frame_origins` names: the
origin of ``[shotgrid] site`` and those of ``[web] frame_ancestors``, and Trackwire itself
(``frame-ancestors 'self' <origins>``). They carry no X-Frame-Options: it cannot name an origin, and
every current browser lets CSP ``frame-ancestors`` supersede it. They need no cookie (the action's
URL token, its form ticket and the job's key authenticate them), so the dashboard's session cookie
stays ``SameSite=Strict`` and is not sent to them in a ShotGrid frame. Static files need nothing:
browsers apply ``frame-ancestors`` to documents, not to the stylesheets and scripts a page loads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from trackwire.config import http_origin

__all__ = ["FRAMEABLE", "SecurityHeaders", "content_security_policy", "frame_origins"]

log = logging.getLogger("trackwire.web")

FRAMEABLE = ("/actions/shotgrid/", "/actions/jobs/")
_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
_NO_STORE = ("/api", "/events", "/groups", "/deadletters", "/live", "/invocations", "/workflows")


def frame_origins(shotgrid_site: str | None, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The origins that may frame the action pages: ``shotgrid_site``'s origin, then ``extra``'s.

    A site URL that is not http(s) gives no origin (logged): the ShotGrid connection fails on it anyway.
    """
    origins: list[str] = []
    if shotgrid_site:
        try:
            origins.append(http_origin(shotgrid_site, whole=False))
        except ValueError as exc:
            log.warning("shotgrid.site gives no origin for the action pages' frame-ancestors: %s", exc)
    for origin in extra:
        normal = http_origin(origin)
        if normal not in origins:
            origins.append(normal)
    return tuple(origins)


def content_security_policy(frame_ancestors: Sequence[str] | None) -> str:
    """The CSP: ``None`` frames nowhere (``'none'``); a sequence frames in Trackwire and those origins."""
    if frame_ancestors is None:
        return f"{_POLICY}; frame-ancestors 'none'"
    return f"{_POLICY}; frame-ancestors " + " ".join(("'self'", *frame_ancestors))


class SecurityHeaders(BaseHTTPMiddleware):
    def __init__(self, app: ASGIApp, frame_ancestors: Sequence[str] = ()) -> None:
        super().__init__(app)
        self._deny = content_security_policy(None)
        self._framed = content_security_policy(frame_ancestors)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        path = request.url.path
        if path.startswith(FRAMEABLE):
            response.headers.setdefault("Content-Security-Policy", self._framed)
        else:
            response.headers.setdefault("Content-Security-Policy", self._deny)
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if path.startswith(_NO_STORE):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
