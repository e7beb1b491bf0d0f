"""Who may see and change what: login sessions, API tokens, and protection against cross-site requests.

- A request is authenticated by ``Authorization: Bearer <token>`` (any configured token) or by the
  login cookie, a signed, expiring value set after ``POST /login`` with the password (or a token).
- Every secret is compared with :func:`hmac.compare_digest`, against every candidate (no early exit).
- A state-changing request authenticated by the cookie must carry the session's CSRF token (form
  field ``csrf_token`` or header ``X-CSRF-Token``) and, when the browser sends ``Origin``, come from
  this site. Bearer-token requests need neither: browsers never add that header by themselves.
- Secrets never reach logs or pages; only their presence is reported.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from trackwire.config import WebSettings

__all__ = ["COOKIE", "Auth", "NeedLogin", "Principal"]

COOKIE = "trackwire_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: ``kind`` is ``session`` or ``token``."""

    kind: str
    name: str
    csrf: str


class NeedLogin(Exception):
    """A browser page was asked for without a login: the app answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def constant_time_in(presented: str, candidates: list[str]) -> bool:
    """Whether ``presented`` equals one of ``candidates``, comparing with every one in constant time."""
    given = presented.encode()
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(given, candidate.encode())
    return found


class Auth:
    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self._tokens = [t.get_secret_value() for t in (settings.token, *settings.tokens) if t is not None]
        self._password = settings.password.get_secret_value() if settings.password is not None else None
        secret = settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_hex(32)
        self._key = hashlib.sha256(b"trackwire-session:" + secret.encode()).digest()

    @property
    def configured(self) -> bool:
        """Whether anyone can log in at all (a password or at least one token is set)."""
        return bool(self._tokens) or self._password is not None

    # -- credentials -------------------------------------------------------------------------------

    def check_token(self, presented: str) -> bool:
        return bool(presented) and constant_time_in(presented, self._tokens)

    def check_login(self, username: str, password: str) -> bool:
        """A password login (for the configured user), or a token typed into the password field."""
        user_ok = hmac.compare_digest(username.encode(), self.settings.username.encode())
        password_ok = self._password is not None and hmac.compare_digest(password.encode(), self._password.encode())
        return (user_ok and password_ok) | self.check_token(password)

    # -- the login cookie --------------------------------------------------------------------------

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def issue(self, name: str) -> str:
        expires = int(time.time() + self.settings.session_hours * 3600)
        payload = json.dumps({"u": name, "e": expires, "n": secrets.token_hex(16)}).encode()
        return f"{_b64(payload)}.{self._sign(payload)}"

    def read_session(self, cookie: str) -> Principal | None:
        body, _, signature = cookie.partition(".")
        try:
            payload = _unb64(body)
        except ValueError:
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            return None
        try:
            data: dict[str, Any] = json.loads(payload)
            if int(data["e"]) < time.time():
                return None
            return Principal("session", str(data["u"]), self._csrf_for(str(data["n"])))
        except (ValueError, KeyError, TypeError):
            return None

    def _csrf_for(self, nonce: str) -> str:
        return self._sign(b"csrf:" + nonce.encode())

    # -- request checks ------------------------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return Principal("token", "token", "") if self.check_token(value.strip()) else None
        cookie = request.cookies.get(COOKIE)
        return self.read_session(cookie) if cookie else None

    def api_user(self, request: Request) -> Principal:
        """FastAPI dependency for JSON endpoints: 401 without credentials."""
        found = self.principal(request)
        if found is None:
            raise HTTPException(401, "login or a bearer token required", headers={"WWW-Authenticate": "Bearer"})
        request.state.principal = found
        return found

    def page_user(self, request: Request) -> Principal:
        """FastAPI dependency for dashboard pages: a redirect to the login page without credentials."""
        found = self.principal(request)
        if found is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise NeedLogin(target)
        request.state.principal = found
        return found

    def same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            # Old browsers and non-browser clients send no Origin; Fetch Metadata still tells cross-site.
            return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
        parts = urlsplit(origin)
        host = request.headers.get("host", "")
        return parts.netloc == host

    async def check_write(self, request: Request, principal: Principal) -> None:
        """Refuse a cookie-authenticated state change without this session's CSRF token (403)."""
        if principal.kind == "token":
            return
        if not self.same_origin(request):
            raise HTTPException(403, "cross-site request refused")
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if not presented or not hmac.compare_digest(presented.encode(), principal.csrf.encode()):
            raise HTTPException(403, "missing or wrong CSRF token")
