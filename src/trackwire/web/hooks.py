"""Generic webhook intake: ``POST /hooks/<name>`` turns a JSON body into an event in the log.

Each hook is configured (``[[web.hooks]]``) with an HMAC-SHA256 secret (the sender signs the raw body,
``sha256=<hex>`` in ``signature_header``) or a bearer token, both compared in constant time. Bodies over
``web.max_body_bytes`` get 413; anything that is not a JSON object (or a list of them) gets a 400 that
says why. The sender's id (``id_field``) makes a delivery idempotent: the same id twice is stored once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trackwire.config import HookSettings, WebSettings
from trackwire.core.event import Event, Ref, encode_event
from trackwire.errors import TrackwireError
from trackwire.web.auth import constant_time_in
from trackwire.web.backend import Backend

__all__ = ["HookError", "build_events", "hooks_router"]

log = logging.getLogger("trackwire.web.hooks")

MAX_BATCH = 1000
MAX_TEXT = 512


class HookError(Exception):
    """A request the hook refuses, with the HTTP status and a message safe to show the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _secret(value: Any, env: str | None) -> str | None:
    if value is not None:
        return str(value.get_secret_value())
    if env:
        return os.environ.get(env) or None
    return None


def _lookup(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HookError(400, f"{what} must be a string or a number")
    text = str(value)
    if not text or len(text) > MAX_TEXT:
        raise HookError(400, f"{what} must be 1 to {MAX_TEXT} characters")
    return text


def _ref(value: Any, what: str) -> Ref | None:
    if value is None:
        return None
    try:
        ref = Ref.from_json(value)
    except (ValueError, TypeError) as exc:
        raise HookError(400, f"{what}: {exc}") from None
    if ref is not None:
        _text(ref.type, f"{what} type")
        _text(ref.id, f"{what} id")
    return ref


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def build_events(hook: HookSettings, raw: bytes) -> list[Event]:
    """The events a body describes; raises :class:`HookError` (400) for anything malformed."""
    try:
        text = raw.decode("utf-8")
        parsed = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise HookError(400, "the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise HookError(400, f"the body is not valid JSON: {str(exc)[:200]}") from None
    bodies = parsed if isinstance(parsed, list) else [parsed]
    if not bodies or len(bodies) > MAX_BATCH:
        raise HookError(400, f"send one JSON object or a list of 1 to {MAX_BATCH} objects")
    source = hook.source or f"hook:{hook.name}"
    events = []
    for number, body in enumerate(bodies):
        if not isinstance(body, dict):
            raise HookError(400, "each event must be a JSON object")
        if hook.id_field:
            found = _lookup(body, hook.id_field)
            if found is None:
                raise HookError(400, f"missing the id field {hook.id_field!r}")
            source_id = _text(found, f"the id field {hook.id_field!r}")
        else:
            digest_input = raw if len(bodies) == 1 else json.dumps(body, sort_keys=True).encode()
            source_id = hashlib.sha256(digest_input).hexdigest() + ("" if len(bodies) == 1 else f"-{number}")
        found_type = _lookup(body, hook.type_field) if hook.type_field else None
        event_type = _text(found_type, f"the type field {hook.type_field!r}") if found_type is not None else None
        event = Event(
            source=source,
            source_id=source_id,
            type=event_type or hook.default_type,
            entity=_ref(_lookup(body, hook.entity_field), "entity") if hook.entity_field else None,
            project=_ref(_lookup(body, hook.project_field), "project") if hook.project_field else None,
            data=body,
        )
        try:
            encode_event(event).encode("utf-8")
        except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
            raise HookError(400, "the body holds text that cannot be stored (unpaired surrogates?)") from None
        events.append(event)
    return events


def authorise(hook: HookSettings, request: Request, raw: bytes) -> None:
    secret = _secret(hook.secret, hook.secret_env)
    token = _secret(hook.token, hook.token_env)
    if secret is None and token is None:
        raise HookError(503, "this hook has no secret or token configured")
    if token is not None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and constant_time_in(value.strip(), [token]):
            return
    if secret is not None:
        presented = request.headers.get(hook.signature_header, "")
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if hmac.compare_digest(presented.strip().lower().encode(), expected.encode()):
            return
    raise HookError(401, "bad or missing signature or token")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HookError(413, f"the body is larger than {limit} bytes")
        except ValueError:
            raise HookError(400, "bad Content-Length") from None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HookError(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def hooks_router(backend: Backend, settings: WebSettings) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    hooks = {hook.name: hook for hook in settings.hooks}

    @router.post("/hooks/{name}", status_code=202, summary="Append events from any system")
    async def intake(name: str, request: Request) -> JSONResponse:
        hook = hooks.get(name)
        if hook is None:
            return JSONResponse({"error": f"no hook called {name!r}"}, status_code=404)
        try:
            raw = await _read_body(request, settings.max_body_bytes)
            authorise(hook, request, raw)
            events = build_events(hook, raw)
        except HookError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        try:
            result = await backend.call(backend.store.append, events)
        except TrackwireError as exc:
            log.error("hook %s: could not store %d event(s): %s", name, len(events), exc)
            return JSONResponse({"error": "the store is unavailable; send again later"}, status_code=503)
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.hook_received(name, len(result.new), len(events) - len(result.new))
        if backend.daemon is not None:
            backend.daemon.notify_appended()
        return JSONResponse(
            {"ids": list(result.ids), "stored": len(result.new), "duplicates": len(events) - len(result.new)},
            status_code=202,
        )

    return router
