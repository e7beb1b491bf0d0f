"""Slack message through slack-sdk's Web API client (``chat.postMessage``)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from trackwire.actions.base import ActionContext, ActionError
from trackwire.actions.templating import render

__all__ = ["check", "run"]


def check(params: dict[str, Any]) -> str | None:
    if not isinstance(params.get("channel"), str):
        return "a slack action needs a 'channel'"
    if "text" not in params and "blocks" not in params:
        return "a slack action needs 'text' or 'blocks'"
    return None


async def run(params: dict[str, Any], ctx: ActionContext, timeout: float) -> str:
    variables = ctx.variables
    token = params.get("token") or (ctx.settings.slack_token.get_secret_value() if ctx.settings.slack_token else None)
    if not token:
        raise ActionError("no Slack token: set automations.slack_token", retry=False)
    client = WebClient(
        token=token,
        base_url=str(params.get("base_url", ctx.settings.slack_base_url)),
        timeout=max(1, math.ceil(timeout)),
    )
    payload: dict[str, Any] = {"channel": str(render(params["channel"], variables))}
    if "text" in params:
        payload["text"] = str(render(params["text"], variables))
    if "blocks" in params:
        payload["blocks"] = render(params["blocks"], variables)
    payload["metadata"] = {"event_type": "trackwire_firing", "event_payload": {"idempotency_key": ctx.idempotency_key}}
    try:
        response = await asyncio.to_thread(lambda: client.chat_postMessage(**payload))
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        status = exc.response.status_code if exc.response is not None else 0
        retry = status >= 500 or status == 429 or error in ("ratelimited", "internal_error", "service_unavailable")
        raise ActionError(f"Slack chat.postMessage: {error or exc}", retry=retry) from exc
    except (SlackRequestError, OSError) as exc:
        raise ActionError(f"Slack chat.postMessage: {type(exc).__name__}: {exc}") from exc
    return f"posted to {payload['channel']} (ts {response.get('ts')})"
