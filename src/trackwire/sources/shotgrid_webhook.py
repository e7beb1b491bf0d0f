"""ShotGrid webhook deliveries, turned into the same ``EventLogEntry`` dicts the poller reads.

A delivery body is ``{"data": {...one delivery...}, "timestamp": ...}``, or, for webhooks with
"Deliver in Batched Format", ``{"data": {"deliveries": [{...}, ...]}, "timestamp": ...}``. Each
delivery carries ``event_log_entry_id``: the event is appended under the poller's source name with
that id as ``source_id``, so whichever of the two sees it first stores it and the other is a no-op.

Pure: bytes and a secret in, verdicts and dicts out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["WebhookError", "entries_from_body", "entry_from_delivery", "signature_ok"]

_ENTRY_KEYS = ("event_type", "attribute_name", "meta", "entity", "user", "project", "session_uuid")


class WebhookError(ValueError):
    """A delivery that cannot be turned into events; the message says why (answered as 400)."""


def signature_ok(body: bytes, header: str | None, secret: str) -> bool:
    """``X-SG-SIGNATURE: sha1=<hex>``: the HMAC-SHA1 of the raw body with the webhook's secret token."""
    if not header or not header.startswith("sha1="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha1=").strip().lower())


def _created_at(value: Any) -> datetime:
    """Webhooks send ``2021-02-22 17:40:23.202136`` (UTC); the API returns whole seconds, so drop the rest."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise WebhookError(f"created_at {value!r} is not a date-time") from exc
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return parsed.replace(microsecond=0)
    raise WebhookError("a delivery needs created_at")


def entry_from_delivery(delivery: Any) -> dict[str, Any]:
    """The ``EventLogEntry`` dict (as shotgun-api3 would return it) for one webhook delivery."""
    if not isinstance(delivery, dict):
        raise WebhookError(f"a delivery must be an object, got {type(delivery).__name__}")
    entry_id = delivery.get("event_log_entry_id")
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or entry_id <= 0:
        raise WebhookError("a delivery needs a positive integer event_log_entry_id")
    if not isinstance(delivery.get("event_type"), str):
        raise WebhookError("a delivery needs an event_type string")
    entry: dict[str, Any] = {"type": "EventLogEntry", "id": entry_id}
    for key in _ENTRY_KEYS:
        entry[key] = delivery.get(key)
    meta = entry["meta"]
    if entry["attribute_name"] is None and isinstance(meta, dict):
        entry["attribute_name"] = meta.get("attribute_name")
    entry["created_at"] = _created_at(delivery.get("created_at"))
    return entry


def entries_from_body(body: bytes) -> list[dict[str, Any]]:
    """Every delivery of one request (single or batched), in the order ShotGrid sent them."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookError(f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise WebhookError('the body must be an object with a "data" object')
    data = payload["data"]
    if "deliveries" in data:
        deliveries = data["deliveries"]
        if not isinstance(deliveries, list):
            raise WebhookError('"data.deliveries" must be a list')
    else:
        deliveries = [data]
    entries = []
    for index, delivery in enumerate(deliveries):
        try:
            entries.append(entry_from_delivery(delivery))
        except WebhookError as exc:
            raise WebhookError(f"delivery {index}: {exc}") from exc
    return entries
