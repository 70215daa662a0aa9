"""What transports ask of the hub server, and small ASGI helpers they share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from ..connection import HubConnection
from ..identity import Identity
from ..options import HubOptions
from ..protocol.negotiate import TransportType

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Refused(Exception):
    """A request answered with an HTTP status instead of being served."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class TransportHost(Protocol):
    """The hub server, as transports see it."""

    options: HubOptions

    def now(self) -> float:
        """The server's clock."""

    async def authenticate(self, scope: Scope, transport: TransportType | None) -> Identity:
        """The request's identity; raises Refused(401) when the authenticator says no."""

    def new_connection(self, identity: Identity) -> HubConnection:
        """Create and track a connection awaiting its transport."""

    def find_connection(self, scope: Scope, identity: Identity) -> HubConnection:
        """The connection named by the `id` query; raises Refused (400/404/403)."""

    def forget(self, connection: HubConnection) -> None:
        """Stop resolving the connection's token."""


def query_params(scope: Scope) -> dict[str, str]:
    """The query parameters (first value of each)."""
    raw = scope.get("query_string", b"").decode("latin-1")
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        params.setdefault(key, value)
    return params


def query_value(scope: Scope, name: str) -> str | None:
    """The first value of a query parameter."""
    return query_params(scope).get(name)


def header_value(scope: Scope, name: bytes) -> str | None:
    """The first value of a (lower-case) request header."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def respond(
    send: Send, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8"
) -> None:
    """Send a complete, small HTTP response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-cache"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
