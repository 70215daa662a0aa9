"""Who a server-to-client message is for, and the port that delivers it."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class AudienceKind(enum.Enum):
    """The kinds of target SignalR knows."""

    ALL = "all"
    CONNECTIONS = "connections"
    USERS = "users"
    GROUPS = "groups"


@dataclass(frozen=True, slots=True)
class Audience:
    """A set of connections, named by kind, minus some connection ids."""

    kind: AudienceKind
    names: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


class MessageSender(Protocol):
    """Delivers invocations to an audience and changes group membership, wherever they live."""

    async def send(self, audience: Audience, method: str, arguments: Sequence[Any]) -> None:
        """Invoke `method` with `arguments` on every connection of `audience`."""

    async def add_to_group(self, connection_id: str, group: str) -> None:
        """Add a connection (on any process) to a group."""

    async def remove_from_group(self, connection_id: str, group: str) -> None:
        """Remove a connection (on any process) from a group."""

    async def invoke(
        self, connection_id: str, method: str, arguments: Sequence[Any], timeout: float
    ) -> Any:
        """Invoke `method` on one connection (on any process) and return the client's result."""
