"""Who is on the other end of a connection, and the hook that decides it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .protocol.negotiate import TransportType


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated (or anonymous, user_id None) party, its claims and when it expires."""

    user_id: str | None
    claims: Mapping[str, Any] = field(default_factory=dict)
    # Unix time after which the credentials are no longer valid (a JWT's `exp`), if any.
    expires_at: float | None = None


ANONYMOUS = Identity(user_id=None)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """What an authenticator sees of an HTTP or WebSocket request."""

    token: str | None
    headers: Mapping[str, str]
    query: Mapping[str, str]
    transport: TransportType | None
    client: tuple[str, int] | None = None


Authenticator = Callable[[AuthRequest], Awaitable[Identity | None]]
"""Returns an identity, or None (or raises AuthenticationError) to refuse with 401."""
