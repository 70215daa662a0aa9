"""The long-polling transport: GET polls for frames, DELETE ends the connection."""

from __future__ import annotations

import asyncio

from ..connection import HubConnection
from ..protocol.base import TransferFormat
from ..protocol.negotiate import TransportType
from .base import Transport
from .host import Receive, Refused, Scope, Send, TransportHost, respond


class _Poll:
    """One outstanding poll request."""

    __slots__ = ("future", "superseded")

    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.superseded = False

    def release(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class LongPollingTransport(Transport):
    """Hands the outbox to whichever poll request is waiting."""

    kind = TransportType.LONG_POLLING
    __slots__ = ("finished", "poll")

    def __init__(self) -> None:
        self.poll: _Poll | None = None
        self.finished = False

    def wake(self) -> None:
        """Answer the waiting poll."""
        if self.poll is not None:
            self.poll.release()

    def finish(self) -> None:
        """Answer the waiting poll; the one after the last frames gets 204."""
        self.finished = True
        self.wake()


def _content_type(connection: HubConnection) -> str:
    protocol = connection.session.protocol
    if protocol is not None and protocol.transfer_format is TransferFormat.BINARY:
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


async def serve_poll(host: TransportHost, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one poll: frames (200), nothing yet (200, empty), or closed (204)."""
    try:
        identity = await host.authenticate(scope, TransportType.LONG_POLLING)
        connection = host.find_connection(scope, identity)
        transport = connection.transport
        if transport is None and not connection.closed:
            # The first poll only establishes the transport, as the official client expects.
            connection.transport = LongPollingTransport()
            await respond(send, 200, b"", _content_type(connection))
            return
        if transport is not None and not isinstance(transport, LongPollingTransport):
            raise Refused(409, "The connection uses another transport.")
    except Refused as refused:
        await respond(send, refused.status, refused.detail.encode())
        return
    if transport is None:
        host.forget(connection)
        await respond(send, 204)
        return
    previous = transport.poll
    if previous is not None:
        # A new poll replaces one the client gave up on; the old request ends with 204.
        previous.superseded = True
        previous.release()
    if not connection.has_outgoing() and not transport.finished:
        poll = _Poll()
        transport.poll = poll
        try:
            await asyncio.wait({poll.future}, timeout=host.options.long_polling_timeout)
        finally:
            if transport.poll is poll:
                transport.poll = None
        if poll.superseded:
            await respond(send, 204)
            return
    data = connection.take_outgoing(host.now())
    if data:
        await respond(send, 200, data, _content_type(connection))
    elif transport.finished:
        host.forget(connection)
        await respond(send, 204)
    else:
        await respond(send, 200, b"", _content_type(connection))


async def serve_delete(host: TransportHost, scope: Scope, receive: Receive, send: Send) -> None:
    """End a long-polling connection at the client's request (202)."""
    try:
        identity = await host.authenticate(scope, None)
        connection = host.find_connection(scope, identity)
        if connection.transport is not None and not isinstance(
            connection.transport, LongPollingTransport
        ):
            raise Refused(400, "Cannot terminate this connection using the DELETE endpoint.")
    except Refused as refused:
        await respond(send, refused.status, refused.detail.encode())
        return
    await connection.close()
    # The client asked to stop: its next (or pending) poll learns of it with 204.
    connection.discard_outgoing()
    await respond(send, 202)
