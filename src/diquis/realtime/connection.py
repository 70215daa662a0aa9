"""One client connection: its identity, session, outbox, groups and running streams."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Set
from typing import Any, Protocol

from .identity import Identity
from .protocol.messages import TRACKABLE, HubMessage, PingMessage
from .protocol.session import (
    HandshakeCompleted,
    HandshakeFailed,
    MessageReceived,
    ProtocolViolation,
    ServerSession,
    SessionState,
)
from .streams import ClientStream
from .transports.base import Transport

log = logging.getLogger(__name__)

_NO_GROUPS: frozenset[str] = frozenset()


class ConnectionHost(Protocol):
    """What a connection asks of the server that owns it."""

    async def connection_opened(self, connection: HubConnection) -> None:
        """The handshake completed."""

    async def dispatch(self, connection: HubConnection, message: HubMessage) -> None:
        """A hub message arrived."""

    async def connection_closed(self, connection: HubConnection, error: str | None) -> None:
        """The connection closed; release everything it holds."""


class HubConnection:
    """Server-side state of one logical SignalR connection."""

    __slots__ = (
        "_groups",
        "_host",
        "_max_buffered",
        "_outbox",
        "_outbox_bytes",
        "closed",
        "closed_at",
        "created_at",
        "detached_at",
        "dispatching",
        "id",
        "identity",
        "items",
        "last_received",
        "last_sent",
        "pending",
        "posting",
        "session",
        "stateful",
        "streams",
        "tasks",
        "token",
        "transport",
        "uploads",
    )

    def __init__(
        self,
        host: ConnectionHost,
        connection_id: str,
        token: str,
        identity: Identity,
        session: ServerSession,
        now: float,
        max_buffered: int,
    ) -> None:
        self._host = host
        self.id = connection_id
        self.token = token
        self.identity = identity
        self.session = session
        self.transport: Transport | None = None
        # Most connections never join a group, and every byte counts at 15,000 of them.
        self._groups: set[str] | None = None
        self.items: dict[str, Any] = {}
        self.streams: dict[str, asyncio.Task[None]] = {}
        self.created_at = now
        self.last_received = now
        self.last_sent = now
        self.closed = False
        self.closed_at = 0.0
        self.posting = False
        # Counted among the server's pending negotiations until the handshake completes.
        self.pending = True
        # The client negotiated stateful reconnect (the handshake decides if it is used).
        self.stateful = False
        # When the transport dropped while the connection may still resume (stateful).
        self.detached_at: float | None = None
        # How many hub invocations of this connection are running right now.
        self.dispatching = 0
        # Client-to-server streams by stream id, and invocations running as tasks.
        self.uploads: dict[str, ClientStream] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._outbox: list[bytes] = []
        self._outbox_bytes = 0
        self._max_buffered = max_buffered

    @property
    def groups(self) -> Set[str]:
        """The groups this connection belongs to (read-only; the registry changes them)."""
        return self._groups if self._groups is not None else _NO_GROUPS

    def add_group(self, group: str) -> None:
        """Record membership of a group."""
        if self._groups is None:
            self._groups = {group}
        else:
            self._groups.add(group)

    def discard_group(self, group: str) -> None:
        """Forget membership of a group."""
        if self._groups is not None:
            self._groups.discard(group)
            if not self._groups:
                self._groups = None

    def clear_groups(self) -> None:
        """Forget every group membership."""
        self._groups = None

    @property
    def user_id(self) -> str | None:
        """The authenticated user's id, or None when anonymous."""
        return self.identity.user_id

    @property
    def is_open(self) -> bool:
        """True once the handshake completed and until the connection closes."""
        return not self.closed and self.session.state is SessionState.OPEN

    def enqueue(self, frame: bytes, tracked: bool = False) -> None:
        """Queue an encoded frame for the client; a client too slow to keep up is dropped.

        `tracked` frames (hub invocation messages) are kept for replay under stateful reconnect.
        """
        if self.closed:
            return
        if tracked:
            replay = self.session.replay
            if replay is not None:
                replay.track(frame)
                if self.detached_at is not None:
                    return  # replayed when the client comes back
        elif self.detached_at is not None:
            return
        self._outbox.append(frame)
        self._outbox_bytes += len(frame)
        if self._outbox_bytes > self._max_buffered:
            self._outbox.clear()
            self._outbox_bytes = 0
            asyncio.get_running_loop().create_task(
                self.close("The client did not read messages fast enough.")
            )
            return
        if self.transport is not None:
            self.transport.wake()

    def send_message(self, message: HubMessage) -> None:
        """Encode a hub message with the negotiated protocol and queue it."""
        if self.is_open:
            self.enqueue(self.session.write(message), isinstance(message, TRACKABLE))

    @property
    def resumable(self) -> bool:
        """True when a dropped transport may come back and resume this connection."""
        replay = self.session.replay
        return replay is not None and not replay.overflowed and self.is_open

    def detach(self, now: float) -> None:
        """The transport dropped; keep the connection for a stateful reconnect."""
        self.transport = None
        self.detached_at = now
        self.discard_outgoing()

    def resume(self, transport: Transport) -> None:
        """Carry on over a new transport: Sequence, then every frame the client has not acked."""
        replay = self.session.replay
        assert replay is not None and self.session.protocol is not None
        self.discard_outgoing()
        self.detached_at = None
        self.transport = transport
        self.enqueue(replay.replay(self.session.protocol))

    def send_ping(self) -> None:
        """Queue a keep-alive ping."""
        self.send_message(PingMessage())

    def has_outgoing(self) -> bool:
        """True when frames are waiting for the transport."""
        return bool(self._outbox)

    def discard_outgoing(self) -> None:
        """Drop every waiting frame (the client said it wants no more)."""
        self._outbox.clear()
        self._outbox_bytes = 0

    def take_outgoing(self, now: float) -> bytes:
        """Remove and return every waiting frame, joined."""
        if not self._outbox:
            return b""
        data = self._outbox[0] if len(self._outbox) == 1 else b"".join(self._outbox)
        self._outbox.clear()
        self._outbox_bytes = 0
        self.last_sent = now
        return data

    async def receive_data(self, data: bytes, now: float) -> None:
        """Handle bytes from the client: handshake, then hub messages."""
        if self.closed:
            return
        self.last_received = now
        for event in self.session.receive_data(data):
            if isinstance(event, MessageReceived):
                await self._host.dispatch(self, event.message)
            elif isinstance(event, HandshakeCompleted):
                self.enqueue(event.response)
                await self._host.connection_opened(self)
            elif isinstance(event, HandshakeFailed):
                log.info("handshake refused on %s: %s", self.id, event.error)
                self.enqueue(event.response)
                await self.close(event.error)
            elif isinstance(event, ProtocolViolation):
                log.info("closing %s for a protocol violation: %s", self.id, event.error)
                if event.close is not None:
                    self.enqueue(event.close)
                await self.close(event.error)
            if self.closed:
                return

    async def close(self, error: str | None = None, allow_reconnect: bool = False) -> None:
        """Close once: say why (Close message, when open), end the transport, release state."""
        if self.closed:
            return
        frame = self.session.close(error, allow_reconnect)
        if frame is not None:
            self.enqueue(frame)
        self.closed = True
        self.detached_at = None
        for task in self.streams.values():
            task.cancel()
        self.streams.clear()
        for task in self.tasks:
            task.cancel()
        for upload in self.uploads.values():
            upload.complete("The connection closed before the stream completed.")
        self.uploads.clear()
        if self.transport is not None:
            self.transport.finish()
        await self._host.connection_closed(self, error)
