"""A Starlette route that serves a hub at a path and everything below it."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from .server import HubServer


class HubRoute(BaseRoute):
    """Mounts a HubServer at `path` (no trailing-slash redirect, WebSockets included).

    Starlette's `Mount` only matches `path/...`, which sends the official client's
    WebSocket request for `path` itself to a 403; this route matches both.
    """

    def __init__(self, path: str, hub: HubServer) -> None:
        if not path.startswith("/") or path.endswith("/"):
            raise ValueError("a hub path must start with '/' and not end with '/'")
        self.path = path
        self.hub = hub

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Match HTTP and WebSocket requests for the path or anything below it."""
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        root_path = scope.get("root_path", "")
        path: str = scope["path"]
        route_path = path[len(root_path) :] if root_path and path.startswith(root_path) else path
        if route_path == self.path or route_path.startswith(self.path + "/"):
            return Match.FULL, {"root_path": root_path + self.path, "endpoint": self.hub}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """Hubs are not reversible by name."""
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request to the hub."""
        await self.hub(scope, receive, send)
