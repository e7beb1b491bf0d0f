"""Who may invoke a hosted action: a shared secret in the action's URL, checked in constant time.

ShotGrid posts an action menu item from the user's browser and signs nothing, and Kitsu's custom
actions are the same kind of request; what the tracker can carry is the URL it was configured with.
So each tracker has its own token (``[hosted_actions] shotgrid_token``, ``kitsu_token``), sent as
``?token=`` in the configured URL (or as ``X-Trackwire-Token`` / ``Authorization: Bearer`` by a script).

- No token presented: 401. A wrong one: 403. No token configured: 403, the endpoint is closed, unless
  ``allow_without_token = true`` says the network is trusted.
- A form page we render posts back with a *form ticket* instead of the token: an HMAC of the action
  and an expiry, keyed by the token, so the secret itself never appears in a page.
- Tokens are compared with :func:`hmac.compare_digest`; they are never logged, and no answer quotes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from trackwire.config import HostedActionsSettings

__all__ = ["FORM_TICKET_SECONDS", "ActionGate", "Refusal"]

FORM_TICKET_SECONDS = 3600
TOKEN_HEADER = "x-trackwire-token"
Tracker = Literal["shotgrid", "kitsu"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request may not invoke an action: ``status`` is 401 or 403."""

    status: int
    message: str


def _presented(request: Request) -> str | None:
    token = request.query_params.get("token")
    if token:
        return token
    header = request.headers.get(TOKEN_HEADER)
    if header:
        return header.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class ActionGate:
    def __init__(self, settings: HostedActionsSettings) -> None:
        self._tokens: dict[str, str | None] = {
            "shotgrid": settings.shotgrid_token.get_secret_value() if settings.shotgrid_token else None,
            "kitsu": settings.kitsu_token.get_secret_value() if settings.kitsu_token else None,
        }
        self._open = settings.allow_without_token

    def configured(self, tracker: Tracker) -> bool:
        return bool(self._tokens[tracker])

    def check(self, tracker: Tracker, request: Request, ticket: str | None = None, action: str = "") -> Refusal | None:
        """``None`` when the request may invoke ``action``; otherwise the refusal to answer with."""
        expected = self._tokens[tracker]
        setting = f"hosted_actions.{tracker}_token"
        if not expected:
            if self._open:
                return None
            return Refusal(403, f"{tracker} actions are closed: set {setting} and put ?token=<it> in the action URL")
        presented = _presented(request)
        if presented is not None:
            if hmac.compare_digest(presented.encode(), expected.encode()):
                return None
            return Refusal(403, f"the token of this {tracker} action URL is wrong (compare it with {setting})")
        if ticket is not None:
            if self.ticket_ok(tracker, action, ticket):
                return None
            return Refusal(403, "this form has expired or was not issued here: start the action again from the menu")
        return Refusal(401, f"this {tracker} action URL needs its token: add ?token=<{setting}> to it")

    # -- form tickets: the form page we render proves itself without quoting the token ----------------

    def _sign(self, tracker: Tracker, action: str, expires: int) -> str:
        key = (self._tokens[tracker] or "").encode()
        digest = hmac.new(key, f"form:{tracker}:{action}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def ticket(self, tracker: Tracker, action: str, now: float | None = None) -> str | None:
        """A ticket for a form posting back to ``action`` (``None`` when no token is set)."""
        if not self._tokens[tracker]:
            return None
        expires = int((time.time() if now is None else now) + FORM_TICKET_SECONDS)
        return f"{expires}.{self._sign(tracker, action, expires)}"

    def ticket_ok(self, tracker: Tracker, action: str, ticket: str, now: float | None = None) -> bool:
        if not self._tokens[tracker]:
            return False
        stamp, _, signature = ticket.partition(".")
        try:
            expires = int(stamp)
        except ValueError:
            return False
        fresh = expires >= (time.time() if now is None else now)
        good = hmac.compare_digest(signature.encode(), self._sign(tracker, action, expires).encode())
        return fresh and good
