"""The WebSocket transport without ASGI after the upgrade: the server hands the socket over.

Over ASGI every connection keeps a task blocked in ``receive()`` (a chain of coroutine
frames, a queue, events) and every message makes a ``websocket.send`` dict that the server
turns into a frame. At 15,000 connections that is most of the hub's memory. A server may
offer, in ``scope["extensions"]``, the :data:`DIRECT` extension: a :class:`DirectSocket`
that, once the app accepted, takes frames to write and hands received messages to a
:class:`DirectReceiver` by plain calls. The hub then returns from the ASGI call; the
connection lives on as this transport object and the server's protocol object, nothing
else. ``diquis serve`` offers it (``diquis.wsprotocol``); other servers need not, and the
hub then serves the socket over ASGI as before (``transports.websocket``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ..connection import HubConnection
from ..eager import start_eagerly
from ..protocol.base import TransferFormat
from ..protocol.negotiate import TransportType
from .base import Transport
from .host import TransportHost

log = logging.getLogger(__name__)

_closing: set[asyncio.Task[None]] = set()  # connections closing after their socket went

DIRECT = "diquis.websocket.direct"
"""The ASGI scope extension naming a :class:`DirectSocket` (an accepted socket's owner)."""


class DirectReceiver(Protocol):
    """What the server calls once the app has taken the socket over."""

    def message(self, data: bytes) -> None:
        """A whole message arrived (text messages as their UTF-8 bytes)."""

    def writable(self) -> None:
        """The socket takes writes again after :attr:`DirectSocket.paused`."""

    def lost(self) -> None:
        """The socket is closed, by either side; nothing more comes."""


class DirectSocket(Protocol):
    """The server side of an accepted WebSocket, usable without ASGI."""

    def takeover(self, receiver: DirectReceiver) -> bool:
        """Route the socket to ``receiver`` from now on; False when it cannot (keep ASGI)."""

    #: True while the socket's write buffer is full (wait for ``writable()``)
    paused: bool

    def write(self, data: bytes, text: bool) -> None:
        """Send one message (a text or a binary frame)."""

    def close(self, code: int) -> None:
        """Start the closing handshake."""

    def pause_reading(self) -> None:
        """Deliver no more messages until :meth:`resume_reading`."""

    def resume_reading(self) -> None:
        """Deliver messages again."""


class DirectWebSocketTransport(Transport):
    """One connection on a socket the hub owns: writes in the caller's turn, reads by callback.

    Messages are handled one at a time, in order: while a hub method runs (the handling
    waits), reading pauses and later messages queue here.
    """

    kind = TransportType.WEBSOCKETS
    __slots__ = (
        "_clock",
        "_closing",
        "_connection",
        "_error",
        "_host",
        "_queued",
        "_socket",
        "_task",
        "superseded",
    )

    def __init__(
        self, host: TransportHost, connection: HubConnection, socket: DirectSocket
    ) -> None:
        self._host = host
        self._clock = host.now
        self._connection = connection
        self._socket = socket
        self._queued: list[bytes] | None = None  # not None while a message is being handled
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None
        self._closing = False
        self.superseded = False

    # -- writing -----------------------------------------------------------------------

    def wake(self) -> None:
        """Write every waiting frame now, unless the socket's buffer is full.

        A broadcast calls this once per connection, so it is kept to the bare steps.
        """
        connection = self._connection
        socket = self._socket
        if self.superseded or self._closing:
            self._flush_and_close()
            return
        if socket.paused:
            return
        data = connection.take_outgoing(self._clock())
        if data:
            protocol = connection.session.protocol
            socket.write(data, protocol is None or protocol.transfer_format is TransferFormat.TEXT)

    def _flush_and_close(self) -> None:
        # Even into a full buffer: the last frames (a Close message) are at most the
        # outbox's limit, and the socket's close timer ends a peer that never reads.
        connection = self._connection
        if self._closing and not self.superseded and connection.has_outgoing():
            data = connection.take_outgoing(self._clock())
            protocol = connection.session.protocol
            text = protocol is None or protocol.transfer_format is TransferFormat.TEXT
            self._socket.write(data, text)
        self._socket.close(1000)

    def finish(self) -> None:
        """Flush, then close the socket."""
        self._closing = True
        self.wake()

    def supersede(self) -> None:
        """A stateful reconnect took the connection over: close this socket, leave the rest."""
        self.superseded = True
        self._socket.close(1000)

    def writable(self) -> None:
        """The socket drained: write what piled up."""
        self.wake()

    # -- reading -----------------------------------------------------------------------

    def message(self, data: bytes) -> None:
        """Handle a message now, or after the one being handled."""
        if self._queued is not None:
            self._queued.append(data)
            return
        self._handle(data, [])

    def _handle(self, data: bytes, queued: list[bytes]) -> None:
        while True:
            task = start_eagerly(self._receive(data))
            if task is not None:
                if self._queued is None:
                    self._socket.pause_reading()
                self._queued = queued
                self._task = task
                task.add_done_callback(self._handled)
                return
            if not queued:
                break
            data = queued.pop(0)
        if self._queued is not None:
            self._queued = None
            self._socket.resume_reading()

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._task = None
        queued = self._queued or []
        if queued:
            self._handle(queued.pop(0), queued)
        else:
            self._queued = None
            self._socket.resume_reading()

    async def _receive(self, data: bytes) -> None:
        connection = self._connection
        if connection.closed or self._error is not None:
            return
        try:
            await connection.receive_data(data, self._host.now())
        except Exception:
            log.exception("websocket connection %s failed", connection.id)
            self._error = "An unexpected error occurred on the server."
            await connection.close(self._error)

    def lost(self) -> None:
        """The socket closed: detach for a stateful reconnect, or close the connection.

        A message being handled finishes (as over ASGI); the ones queued behind it are dropped.
        """
        if self._queued:
            self._queued.clear()
        connection = self._connection
        if self.superseded:
            return  # the connection lives on over a newer socket
        if self._error is None and connection.resumable:
            connection.detach(self._host.now())
            return
        task = start_eagerly(self._close())
        if task is not None:
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def _close(self) -> None:
        try:
            await self._connection.close(self._error)
        finally:
            self._host.forget(self._connection)
