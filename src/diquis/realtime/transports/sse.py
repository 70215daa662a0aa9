"""The Server-Sent Events transport: server-to-client events, paired with HTTP POST sends."""

from __future__ import annotations

import asyncio
import contextlib

from ..connection import HubConnection
from ..protocol.negotiate import TransportType
from .base import Transport
from .host import Receive, Refused, Scope, Send, TransportHost, respond


def encode_event(data: bytes) -> bytes:
    """One SSE event carrying `data`, one `data:` line per line of it."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    return b"".join(b"data: " + line + b"\r\n" for line in lines) + b"\r\n"


class ServerSentEventsTransport(Transport):
    """Signals the long-lived event-stream response that frames are waiting."""

    kind = TransportType.SERVER_SENT_EVENTS
    __slots__ = ("event", "finished")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.finished = False

    def wake(self) -> None:
        """Wake the response loop."""
        self.event.set()

    def finish(self) -> None:
        """End the response after flushing."""
        self.finished = True
        self.event.set()


async def _watch_disconnect(receive: Receive, transport: ServerSentEventsTransport) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            transport.finish()
            return


async def serve_event_stream(
    host: TransportHost, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run one SSE response for a negotiated connection until either side ends it."""
    try:
        identity = await host.authenticate(scope, TransportType.SERVER_SENT_EVENTS)
        connection: HubConnection = host.find_connection(scope, identity)
        if connection.transport is not None or connection.closed:
            raise Refused(409, "The connection already has a transport.")
    except Refused as refused:
        await respond(send, refused.status, refused.detail.encode())
        return
    transport = ServerSentEventsTransport()
    connection.transport = transport
    watcher = asyncio.get_running_loop().create_task(_watch_disconnect(receive, transport))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    try:
        # A comment line gets the headers through buffering proxies and opens the stream.
        await send({"type": "http.response.body", "body": b":\r\n\r\n", "more_body": True})
        while True:
            await transport.event.wait()
            transport.event.clear()
            data = connection.take_outgoing(host.now())
            if data:
                await send(
                    {"type": "http.response.body", "body": encode_event(data), "more_body": True}
                )
            if transport.finished and not connection.has_outgoing():
                break
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except Exception:
        pass
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        await connection.close()
        host.forget(connection)
