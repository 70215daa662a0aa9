"""The Hub base class: subclass it and write public async methods clients can invoke."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .clients import CallerClients, GroupManager
from .identity import Identity


@dataclass(frozen=True, slots=True)
class HubCallerContext:
    """Facts about the connection a hub method runs for."""

    connection_id: str
    user: Identity
    items: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str | None:
        """The caller's user id, or None when anonymous."""
        return self.user.user_id

    @property
    def claims(self) -> Mapping[str, Any]:
        """The caller's claims."""
        return self.user.claims


class Hub:
    """Base class of hubs; one instance is made per invocation, so keep state elsewhere.

    Public `async def` methods are callable by clients (names match case-insensitively and
    ignoring underscores, so JavaScript's `SendMessage` reaches `send_message`). An `async
    def` generator streams its items. Raise `HubError` to send a message to the caller.
    """

    context: HubCallerContext
    clients: CallerClients
    groups: GroupManager

    async def on_connected(self) -> None:
        """Called once the client's handshake completed."""

    async def on_disconnected(self, error: str | None) -> None:
        """Called once the connection closed; `error` says why, if it was not a clean close."""


HUB_BASE_NAMES = frozenset({"on_connected", "on_disconnected", "context", "clients", "groups"})


def bind_hub(
    hub_type: type[Hub], context: HubCallerContext, clients: CallerClients, groups: GroupManager
) -> Hub:
    """Make a hub instance for one call."""
    hub = hub_type()
    hub.context = context
    hub.clients = clients
    hub.groups = groups
    return hub
