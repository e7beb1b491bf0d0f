"""HTTP webhook: a JSON (or text) request; 5xx, 408, 429 and network errors are retried."""

from __future__ import annotations

from typing import Any

import httpx

from trackwire.actions.base import ActionContext, ActionError
from trackwire.actions.templating import render

__all__ = ["check", "run"]


def check(params: dict[str, Any]) -> str | None:
    if not isinstance(params.get("url"), str):
        return "a webhook action needs a 'url'"
    if str(params.get("method", "POST")).upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return f"unknown HTTP method {params.get('method')!r}"
    return None


async def run(params: dict[str, Any], ctx: ActionContext, timeout: float) -> str:
    variables = ctx.variables
    url = str(render(params["url"], variables))
    method = str(params.get("method", "POST")).upper()
    headers = {str(k): str(v) for k, v in render(params.get("headers", {}), variables).items()}
    headers.setdefault("Idempotency-Key", ctx.idempotency_key)
    kwargs: dict[str, Any] = {}
    if "content" in params:
        kwargs["content"] = str(render(params["content"], variables))
    elif "body" in params:
        kwargs["json"] = render(params["body"], variables)
    elif method != "GET":
        kwargs["json"] = {"automation": ctx.automation, "firing": ctx.firing}
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.request(method, url, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        raise ActionError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        retry = response.status_code >= 500 or response.status_code in (408, 429)
        raise ActionError(f"{method} {url}: HTTP {response.status_code} {response.text[:200]}", retry=retry)
    return f"{method} {url}: HTTP {response.status_code}"
