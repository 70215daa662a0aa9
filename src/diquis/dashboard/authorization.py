"""Who may see the dashboard: pluggable filters, like Hangfire's IDashboardAuthorizationFilter.

A filter is any callable taking the Starlette ``Request`` and returning an ``Access``
(or a bool: True allows, False forbids), directly or as an awaitable. Every configured
filter must allow. A filter may put the user it found on ``request.state.principal`` (anything with
``email``, ``user_id`` and ``role``); the dashboard shows who is signed in and ties its
CSRF tokens to the session cookie named by ``create_dashboard(session_cookie=...)``. The
dashboard ships :class:`LocalRequestsOnly`; filters tied to an app's users belong to that
app (the reference app's is ``diquis.identity.dashboard_access.SuperAdminFromSessionCookie``).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Awaitable, Callable

from starlette.requests import Request

#: the session cookie a dashboard binds its CSRF tokens to unless told another name
DEFAULT_SESSION_COOKIE = "diquis_session"


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


__all__ = ["DEFAULT_SESSION_COOKIE", "Access", "AuthorizationFilter", "LocalRequestsOnly"]
