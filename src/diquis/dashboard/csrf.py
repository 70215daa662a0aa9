"""CSRF protection for actions: a signed double-submit token bound to the session.

The token lives in an HttpOnly cookie and in every action form; a POST passes only when
the submitted token equals the cookie's and its signature matches the current session
cookie, so a token stolen from one session (or forged without the key) is worthless.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from .authorization import DEFAULT_SESSION_COOKIE

CSRF_COOKIE = "diquis_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class CsrfTokens:
    """Issues and checks CSRF tokens with one key (share it across processes)."""

    def __init__(
        self, secret: str | None = None, *, session_cookie: str = DEFAULT_SESSION_COOKIE
    ) -> None:
        self._key = (secret or secrets.token_urlsafe(32)).encode()
        self.session_cookie = session_cookie

    def _binding(self, request: Request) -> str:
        session = request.cookies.get(self.session_cookie, "")
        return hashlib.sha256(session.encode()).hexdigest()

    def _sign(self, nonce: str, binding: str) -> str:
        mac = hmac.new(self._key, f"{nonce}|{binding}".encode(), hashlib.sha256).hexdigest()
        return f"{nonce}.{mac}"

    def _genuine(self, token: str, request: Request) -> bool:
        nonce, _, _ = token.partition(".")
        return bool(nonce) and hmac.compare_digest(token, self._sign(nonce, self._binding(request)))

    def token(self, request: Request) -> tuple[str, bool]:
        """The token for this session: (token, whether the cookie must be (re)set)."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if current and self._genuine(current, request):
            return current, False
        return self._sign(secrets.token_urlsafe(18), self._binding(request)), True

    def check(self, request: Request, submitted: str | None) -> bool:
        """Whether ``submitted`` equals this session's genuine cookie token."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not submitted or not cookie or not hmac.compare_digest(submitted, cookie):
            return False
        return self._genuine(cookie, request)
