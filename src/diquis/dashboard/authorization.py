"""Who may see the dashboard: pluggable filters, like Hangfire's IDashboardAuthorizationFilter.

A filter is any callable taking the Starlette ``Request`` and returning an ``Access``
(or a bool: True allows, False forbids), directly or as an awaitable. Every configured
filter must allow. A filter may put the user it found on ``request.state.principal``; the
dashboard shows who is signed in and ties its CSRF tokens to that session.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from ..identity import ROLE_SUPERADMIN, SESSION_COOKIE, InvalidTokenError, verify_token


class Access(enum.Enum):
    """A filter's verdict."""

    ALLOW = "allow"
    #: nobody is signed in: pages redirect to the login page, JSON answers 401
    UNAUTHENTICATED = "unauthenticated"
    #: someone is signed in, or the request comes from somewhere, that may not enter: 403
    FORBIDDEN = "forbidden"


AuthorizationFilter = Callable[[Request], "Access | bool | Awaitable[Access | bool]"]


class LocalRequestsOnly:
    """Allow requests from the loopback interface only (the default with no filter)."""

    def __call__(self, request: Request) -> Access:
        """ALLOW for 127.0.0.0/8, ::1 and ``localhost``; FORBIDDEN otherwise."""
        host = request.client.host if request.client else ""
        if host == "localhost":
            return Access.ALLOW
        try:
            return Access.ALLOW if ipaddress.ip_address(host).is_loopback else Access.FORBIDDEN
        except ValueError:
            return Access.FORBIDDEN


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


__all__ = ["Access", "AuthorizationFilter", "LocalRequestsOnly", "SuperAdminFromSessionCookie"]
