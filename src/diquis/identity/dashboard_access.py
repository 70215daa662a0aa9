"""The app's jobs-dashboard filter: SuperAdmins signed in with the app's session token."""

from __future__ import annotations

from starlette.requests import Request

from ..dashboard.authorization import Access
from .tokens import ROLE_SUPERADMIN, SESSION_COOKIE, InvalidTokenError, verify_token


class SuperAdminFromSessionCookie:
    """Allow a user whose session token (cookie, or ``Authorization: Bearer``) is a SuperAdmin."""

    def __init__(
        self, secret: str, *, cookie: str = SESSION_COOKIE, role: str = ROLE_SUPERADMIN
    ) -> None:
        if not secret:
            raise ValueError("SuperAdminFromSessionCookie needs the token signing secret")
        self.secret = secret
        self.cookie = cookie
        self.role = role

    def __call__(self, request: Request) -> Access:
        """UNAUTHENTICATED without a valid token, FORBIDDEN for another role, else ALLOW."""
        token = request.cookies.get(self.cookie, "")
        if not token:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else ""
        try:
            principal = verify_token(self.secret, token)
        except InvalidTokenError:
            return Access.UNAUTHENTICATED
        request.state.principal = principal
        return Access.ALLOW if principal.role == self.role else Access.FORBIDDEN


__all__ = ["SuperAdminFromSessionCookie"]
