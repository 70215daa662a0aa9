"""The WebSocket transport: full duplex, with or without a prior negotiate."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging

from ..connection import HubConnection
from ..eager import start_eagerly
from ..protocol.base import TransferFormat
from ..protocol.negotiate import TransportType
from .base import Transport
from .direct_websocket import DIRECT, DirectWebSocketTransport
from .host import (
    Receive,
    Refused,
    Scope,
    Send,
    TransportHost,
    query_value,
)

log = logging.getLogger(__name__)

refused_here: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "diquis_websocket_refused", default=False
)
"""Set in the task serving a WebSocket request the hub refused (see realtime.logfilter)."""


class WebSocketTransport(Transport):
    """Writes the outbox to the socket at once; a task carries on only when the socket waits."""

    kind = TransportType.WEBSOCKETS
    __slots__ = (
        "_connection",
        "_finished",
        "_host",
        "_send",
        "_writer",
        "_writing",
        "superseded",
    )

    def __init__(self, host: TransportHost, connection: HubConnection, send: Send) -> None:
        self._host = host
        self._connection = connection
        self._send = send
        self._writer: asyncio.Task[None] | None = None
        self._writing = False
        self._finished = False
        self.superseded = False

    def wake(self) -> None:
        """Write what is waiting now, unless a write is under way (it takes the new frames)."""
        if self._writing:
            return
        self._writing = True
        self._writer = start_eagerly(self._drain())

    def finish(self) -> None:
        """Flush, then close the socket."""
        self._finished = True
        self.wake()

    def supersede(self) -> None:
        """A stateful reconnect took the connection over: close this socket, leave the rest."""
        self.superseded = True
        if not self._writing:
            self._writing = True
            self._writer = start_eagerly(self._close_socket())

    async def _close_socket(self) -> None:
        try:
            await self._send({"type": "websocket.close", "code": 1000})
        except Exception:
            log.debug("closing a superseded websocket failed", exc_info=True)
        finally:
            self._writing = False
            self._writer = None

    @property
    def writer(self) -> asyncio.Task[None] | None:
        """The task finishing a write the socket made wait, if any."""
        return self._writer

    async def _drain(self) -> None:
        connection = self._connection
        try:
            while connection.has_outgoing() and not self.superseded:
                data = connection.take_outgoing(self._host.now())
                protocol = connection.session.protocol
                if protocol is None or protocol.transfer_format is TransferFormat.TEXT:
                    await self._send({"type": "websocket.send", "text": data.decode()})
                else:
                    await self._send({"type": "websocket.send", "bytes": data})
            if self._finished or self.superseded:
                await self._send({"type": "websocket.close", "code": 1000})
        except Exception:
            # The peer is gone; the receive loop notices and closes the connection.
            log.debug("websocket write failed", exc_info=True)
        finally:
            self._writing = False
            self._writer = None


_SOCKETS = (WebSocketTransport, DirectWebSocketTransport)


async def deny(scope: Scope, send: Send, status: int, detail: str) -> None:
    """Refuse a WebSocket upgrade with an HTTP status (or a policy close as a fallback).

    Logs one INFO line, without the query string (it may hold the access token).
    """
    log.info("refused WebSocket %s: %d %s", scope.get("path", ""), status, detail)
    refused_here.set(True)
    if "websocket.http.response" in scope.get("extensions", {}):
        body = detail.encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})


def _attach(
    host: TransportHost, connection: HubConnection, transport: Transport, resuming: bool
) -> None:
    if resuming:
        log.debug("connection %s resumed on a new websocket", connection.id)
        connection.last_received = host.now()
        connection.resume(transport)
    else:
        connection.transport = transport


async def serve_websocket(host: TransportHost, scope: Scope, receive: Receive, send: Send) -> None:
    """Run one WebSocket connection from upgrade to close."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    try:
        identity = await host.authenticate(scope, TransportType.WEBSOCKETS)
        resuming = False
        if query_value(scope, "id") is None:
            connection = host.new_connection(identity)
        else:
            connection = host.find_connection(scope, identity)
            previous = connection.transport
            if connection.resumable and (previous is None or isinstance(previous, _SOCKETS)):
                # A stateful reconnect: this socket carries on the same connection.
                resuming = connection.detached_at is not None or previous is not None
                if isinstance(previous, _SOCKETS):
                    previous.supersede()
            if not resuming and (connection.transport is not None or connection.closed):
                raise Refused(409, "The connection already has a transport.")
    except Refused as refused:
        await deny(scope, send, refused.status, refused.detail)
        return
    await send({"type": "websocket.accept"})
    socket = scope.get("extensions", {}).get(DIRECT)
    if socket is not None:
        direct = DirectWebSocketTransport(host, connection, socket)
        if socket.takeover(direct):
            # The server hands received messages to `direct`; this ASGI call is done.
            _attach(host, connection, direct, resuming)
            return
    transport = WebSocketTransport(host, connection, send)
    _attach(host, connection, transport, resuming)
    error: str | None = None
    try:
        while not connection.closed:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                data = text.encode() if text is not None else message.get("bytes") or b""
                await connection.receive_data(data, host.now())
            elif kind == "websocket.disconnect":
                break
    except Exception:
        log.exception("websocket connection %s failed", connection.id)
        error = "An unexpected error occurred on the server."
    finally:
        if transport.superseded:
            pass  # the connection lives on over a newer socket
        elif error is None and connection.resumable:
            # The socket dropped under a stateful connection: wait for the client to return.
            connection.detach(host.now())
        else:
            await connection.close(error)
            host.forget(connection)
        writer = transport.writer
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer
