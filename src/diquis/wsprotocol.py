"""uvicorn's sans-IO WebSocket protocol, plus a way for the app to take an accepted socket over.

Every WebSocket request is served by uvicorn as usual (handshake, ASGI app, refusals,
permessage-deflate). The scope also carries the hub's ``diquis.websocket.direct`` extension
(:mod:`diquis.realtime.transports.direct_websocket`): after accepting, the app may call
``takeover(receiver)``. From then on received messages go to ``receiver.message`` by a
plain call, writes are frames put on the transport at once, the ASGI task ends, and what
only ASGI needed (the receive queue, the events, the scope, the parsed request and
response) is dropped: ~10 KiB less per connection and no ``websocket.send`` dict, no task
and no frame object per message. Apps that never call it are served exactly as by uvicorn.

It leans on attributes of uvicorn's ``WebSocketsSansIOProtocol`` (``conn``, ``transport``,
``queue``, ``frames``...), so uvicorn is pinned in the locks; the tests run the official
clients over it.
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from .realtime.transports.direct_websocket import DIRECT, DirectReceiver

_TEXT, _BINARY = 0x81, 0x82  # FIN + opcode

# The last frame built, by the identity of its payload: a broadcast hands every connection
# the same bytes object, so it is framed once and the one frame goes to every socket.
_last: tuple[bytes, bool, bytes] = (b"", True, b"")


def frame_header(first: int, length: int) -> bytes:
    """The header of an unmasked (server-to-client) frame of ``length`` payload bytes."""
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol, able to hand an accepted socket to a :class:`DirectReceiver`."""

    receiver: DirectReceiver | None = None
    #: True while the transport's write buffer is over its high-water mark (DirectSocket)
    paused = False

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][DIRECT] = self

    # -- DirectSocket ------------------------------------------------------------------

    def takeover(self, receiver: DirectReceiver) -> bool:
        """Serve the socket through ``receiver`` from now on (not with permessage-deflate)."""
        if self.conn.extensions or self.close_sent or self.disconnected:
            return False
        self.receiver = receiver
        early = []
        while not self.queue.empty():
            message = self.queue.get_nowait()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                early.append(text.encode() if text is not None else message.get("bytes") or b"")
        # ASGI's state for this socket is no longer needed; keep the socket's own.
        del self.queue, self.scope, self.request, self.response, self.writable
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        for data in early:
            receiver.message(data)
        return True

    def write(self, data: bytes, text: bool) -> None:
        """Put one unfragmented message frame on the transport."""
        global _last
        if self.close_sent or self.disconnected:
            return
        payload, was_text, frame = _last
        if payload is not data or was_text is not text:
            frame = frame_header(_TEXT if text else _BINARY, len(data)) + data
            _last = (data, text, frame)
        self.transport.write(frame)

    def close(self, code: int) -> None:
        """Send a close frame; the transport closes on the peer's reply (or after a timeout)."""
        if (
            self.close_sent
            or self.disconnected
            or self.transport.is_closing()
            or self.conn.state is not State.OPEN  # the peer's close came first (replied to)
        ):
            return
        self.conn.send_close(code)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # abort, not close: close() would wait for a peer that stopped reading to take the
        # buffered bytes, for ever
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    def pause_reading(self) -> None:
        """Read nothing more from the socket until resume_reading()."""
        if not self.read_paused and not self.disconnected:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the socket again."""
        if self.read_paused and not self.disconnected:
            self.read_paused = False
            self.transport.resume_reading()

    # -- uvicorn's hooks, routed to the receiver once taken over -------------------------

    def send_receive_event_to_app(self) -> None:
        receiver = self.receiver
        if receiver is None:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        self.frames = []
        if not self.close_sent:
            receiver.message(frames[0] if len(frames) == 1 else b"".join(frames))

    def pause_writing(self) -> None:
        if self.receiver is None:
            super().pause_writing()
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.receiver is None:
            super().resume_writing()
        else:
            self.receiver.writable()

    def handle_close(self, event: Any) -> None:
        if self.receiver is None:
            super().handle_close(event)
            return
        if self.close_sent:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.transport.close()
            return
        if not self.transport.is_closing():
            self.transport.write(b"".join(self.conn.data_to_send()))  # the close reply
            self.close_sent = True
            self.transport.close()

    def handle_parser_exception(self) -> None:
        if self.receiver is None:
            super().handle_parser_exception()
            return
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        receiver = self.receiver
        if receiver is None:
            super().connection_lost(exc)
            return
        self.stop_keepalive()
        self.connections.discard(self)
        self.disconnected = True
        self.handshake_complete = True
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if exc is None:
            self.transport.close()
        receiver.lost()

    def shutdown(self) -> None:
        if self.receiver is None:
            super().shutdown()
            return
        if (
            not self.close_sent
            and not self.transport.is_closing()
            and self.conn.state is State.OPEN
        ):
            self.conn.send_close(1012)  # service restart: the client may reconnect elsewhere
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        if self.paused:
            self.transport.abort()  # a peer that is not reading would hold the shutdown up
        else:
            self.transport.close()

    async def run_asgi(self) -> None:
        """uvicorn's, except that a socket taken over stays open when the app returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if self.receiver is not None:
                return
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and self.receiver is None:
            self.transport.close()
