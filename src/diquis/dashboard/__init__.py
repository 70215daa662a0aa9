"""The jobs dashboard (our Hangfire dashboard): an ASGI app to mount at ``/hangfire``.

>>> from diquis.dashboard import create_dashboard, SuperAdminFromSessionCookie
>>> dashboard = create_dashboard(engine, authorization=SuperAdminFromSessionCookie(secret))
>>> app = Starlette(routes=[Mount("/hangfire", app=dashboard)])
"""

from .app import Dashboard, create_dashboard
from .authorization import (
    Access,
    AuthorizationFilter,
    LocalRequestsOnly,
    SuperAdminFromSessionCookie,
)
from .live import LiveFeed

__all__ = [
    "Access",
    "AuthorizationFilter",
    "Dashboard",
    "LiveFeed",
    "LocalRequestsOnly",
    "SuperAdminFromSessionCookie",
    "create_dashboard",
]
