"""CORS for Kitsu's ``is_ajax`` custom actions: the browser's preflight, answered for Kitsu's origin only.

Kitsu's web client posts an ajax custom action from its own page with ``superagent``'s
``.withCredentials().send(data)``: a cross-origin ``application/json`` POST with credentials. The
browser first sends an ``OPTIONS`` preflight and sends the POST only when the answer allows that
origin, with credentials, by name (``*`` is not accepted with credentials). This middleware answers
the preflight of ``/actions/kitsu/...`` for the origins in ``[hosted_actions] kitsu_origins`` and adds
the same headers to their POST answers; every other origin gets no CORS headers, so its browser stops
at the preflight. Form posts (non-ajax custom actions, opened in a new tab) need no CORS and are not
affected.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp

__all__ = ["KITSU_ACTIONS_PREFIX", "KitsuActionCors"]

KITSU_ACTIONS_PREFIX = "/actions/kitsu/"
_ALLOWED_HEADERS = {"content-type", "x-requested-with"}


def _same(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class KitsuActionCors(BaseHTTPMiddleware):
    def __init__(self, app: ASGIApp, origins: Callable[[], Collection[str]]) -> None:
        super().__init__(app)
        self._origins = origins

    def _allowed(self, origin: str) -> bool:
        return _same(origin) in {_same(o) for o in self._origins()}

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        origin = request.headers.get("origin")
        if origin is None or not request.url.path.startswith(KITSU_ACTIONS_PREFIX):
            return await call_next(request)
        allowed = self._allowed(origin)
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            if not allowed:
                reason = f"origin {origin} is not in [hosted_actions] kitsu_origins"
                return PlainTextResponse(reason, status_code=403, headers={"Vary": "Origin"})
            asked = {h.strip().lower() for h in request.headers.get("access-control-request-headers", "").split(",")}
            refused = sorted(h for h in asked - _ALLOWED_HEADERS if h)
            if request.headers["access-control-request-method"].upper() != "POST" or refused:
                what = ", ".join(refused) or request.headers["access-control-request-method"]
                return PlainTextResponse(f"a Kitsu custom action is a JSON POST; not allowed: {what}", 403)
            return Response(
                status_code=204,
                headers=_cors(origin)
                | {
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": ", ".join(sorted(_ALLOWED_HEADERS)),
                    "Access-Control-Max-Age": "600",
                },
            )
        response = await call_next(request)
        if allowed:
            response.headers.update(_cors(origin))
        return response


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
