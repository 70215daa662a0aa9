"""Message senders: through the backplane to every process, or only publishing (no HTTP)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from diquis.realtime.audience import Audience, AudienceKind
from diquis.realtime.backplane.base import Backplane
from diquis.realtime.clients import HubContext
from diquis.realtime.envelope import GroupEnvelope, decode, encode_group, encode_send
from diquis.realtime.errors import BackplaneError, HubError
from diquis.realtime.protocol.base import HubProtocol
from diquis.realtime.protocol.messages import InvocationMessage
from diquis.realtime.registry import LocalConnections

logger = logging.getLogger("diquis.realtime.lifetime")


def _encode_send(hub: str, audience: Audience, method: str, arguments: Sequence[Any]) -> str:
    try:
        return encode_send(hub, audience, method, arguments)
    except (TypeError, ValueError) as exc:
        raise HubError(f"arguments of '{method}' are not JSON values: {exc}") from exc


class BackplanePublisher:
    """A sender for a process with no connections (a job worker): it only publishes."""

    def __init__(self, backplane: Backplane, hub_name: str) -> None:
        self.backplane = backplane
        self.hub_name = hub_name

    async def send(self, audience: Audience, method: str, arguments: Sequence[Any]) -> None:
        """Publish a send for every process to deliver."""
        await self.backplane.publish(_encode_send(self.hub_name, audience, method, arguments))

    async def add_to_group(self, connection_id: str, group: str) -> None:
        """Publish a group add for the process holding the connection."""
        await self.backplane.publish(encode_group(self.hub_name, connection_id, group, True))

    async def remove_from_group(self, connection_id: str, group: str) -> None:
        """Publish a group removal for the process holding the connection."""
        await self.backplane.publish(encode_group(self.hub_name, connection_id, group, False))


def publisher_context(backplane: Backplane, hub_name: str) -> HubContext:
    """A hub context for a process without HTTP: everything goes through `backplane`."""
    return HubContext(BackplanePublisher(backplane, hub_name))


class HubLifetime(BackplanePublisher):
    """The sender of a web process: local shortcuts, the backplane for everything else."""

    def __init__(
        self,
        backplane: Backplane,
        hub_name: str,
        connections: LocalConnections,
        protocols: Sequence[HubProtocol],
    ) -> None:
        super().__init__(backplane, hub_name)
        self.connections = connections
        self._protocols = protocols

    async def send(self, audience: Audience, method: str, arguments: Sequence[Any]) -> None:
        """Deliver directly when every addressed connection is here; else publish."""
        if audience.kind is AudienceKind.CONNECTIONS and all(
            name in self.connections.by_id for name in audience.names
        ):
            _encode_send(self.hub_name, audience, method, arguments)
            self.deliver(audience, method, tuple(arguments))
            return
        await super().send(audience, method, arguments)

    async def add_to_group(self, connection_id: str, group: str) -> None:
        """Join here when the connection is here; else ask its process via the backplane."""
        if not self.connections.join(connection_id, group):
            await super().add_to_group(connection_id, group)

    async def remove_from_group(self, connection_id: str, group: str) -> None:
        """Leave here when the connection is here; else ask its process via the backplane."""
        if not self.connections.leave(connection_id, group):
            await super().remove_from_group(connection_id, group)

    def deliver(self, audience: Audience, method: str, arguments: tuple[Any, ...]) -> int:
        """Queue the invocation on every local connection of `audience`; return how many."""
        targets = self.connections.select(audience)
        frames: dict[str, bytes] = {}
        count = 0
        message = InvocationMessage(target=method, arguments=arguments)
        for connection in targets:
            protocol = connection.session.protocol
            if protocol is None or connection.closed:
                continue
            frame = frames.get(protocol.name)
            if frame is None:
                frame = frames[protocol.name] = protocol.write_message(message)
            connection.enqueue(frame)
            count += 1
        return count

    async def on_backplane(self, payload: str) -> None:
        """Apply a payload from any process (this one included)."""
        try:
            envelope = decode(payload)
        except BackplaneError:
            logger.warning("ignoring a malformed backplane payload")
            return
        if envelope.hub != self.hub_name:
            return
        if isinstance(envelope, GroupEnvelope):
            if envelope.add:
                self.connections.join(envelope.connection_id, envelope.group)
            else:
                self.connections.leave(envelope.connection_id, envelope.group)
            return
        self.deliver(envelope.audience, envelope.method, envelope.arguments)
