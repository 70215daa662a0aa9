"""The jobs dashboard (our Hangfire dashboard): an ASGI app to mount at ``/hangfire``.

It reads the engine's monitoring API only and never imports an app's users: give it an
authorization filter (default :class:`LocalRequestsOnly`) and your session cookie's name.

>>> from diquis.dashboard import create_dashboard
>>> dashboard = create_dashboard(engine, authorization=my_filter, session_cookie="sid")
>>> app = Starlette(routes=[Mount("/hangfire", app=dashboard)])
"""

from __future__ import annotations

import warnings
from typing import Any

from .app import Dashboard, create_dashboard
from .authorization import DEFAULT_SESSION_COOKIE, Access, AuthorizationFilter, LocalRequestsOnly
from .live import LiveFeed

__all__ = [
    "DEFAULT_SESSION_COOKIE",
    "Access",
    "AuthorizationFilter",
    "Dashboard",
    "LiveFeed",
    "LocalRequestsOnly",
    "create_dashboard",
]


def __getattr__(name: str) -> Any:
    """``SuperAdminFromSessionCookie`` moved to the reference app (deprecated alias)."""
    if name == "SuperAdminFromSessionCookie":
        warnings.warn(
            "diquis.dashboard.SuperAdminFromSessionCookie belongs to the reference app: import "
            "it from diquis.identity.dashboard_access",
            DeprecationWarning,
            stacklevel=2,
        )
        from ..identity.dashboard_access import SuperAdminFromSessionCookie

        return SuperAdminFromSessionCookie
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
