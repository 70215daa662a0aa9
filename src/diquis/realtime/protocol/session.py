"""A sans-IO server session: handshake first, then hub messages, until closed."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import HandshakeError, ProtocolError
from .base import HubProtocol, RecordSplitter
from .handshake import parse_handshake_request, write_handshake_response
from .messages import (
    TRACKABLE,
    AckMessage,
    CloseMessage,
    HubMessage,
    SequenceMessage,
)
from .records import RECORD_SEPARATOR, RecordReader
from .replay import ReplayBuffer

STATEFUL_RECONNECT_VERSION = 2
"""The hub protocol version from which Ack and Sequence messages exist."""


class SessionState(enum.Enum):
    """Where a session is in its life."""

    AWAITING_HANDSHAKE = "awaiting_handshake"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """The handshake was accepted; send `response` before anything else."""

    protocol: HubProtocol
    response: bytes


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """The handshake was refused; send `response`, then close the transport."""

    error: str
    response: bytes


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A hub message arrived."""

    message: HubMessage


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke the protocol; send `close` (if any), then close the transport."""

    error: str
    close: bytes | None


SessionEvent = HandshakeCompleted | HandshakeFailed | MessageReceived | ProtocolViolation


class ServerSession:
    """Turns received bytes into session events, in the manner of h11's Connection."""

    __slots__ = (
        "_handshake_buffer",
        "_max_size",
        "_protocols",
        "_reader",
        "protocol",
        "protocol_version",
        "replay",
        "state",
    )

    def __init__(
        self,
        protocols: Sequence[HubProtocol] | Mapping[str, HubProtocol],
        max_message_size: int | None,
    ) -> None:
        # A server passes one shared mapping (name -> protocol) rather than a dict per session.
        self._protocols: Mapping[str, HubProtocol] = (
            protocols if isinstance(protocols, Mapping) else {p.name: p for p in protocols}
        )
        self._max_size = max_message_size
        self._handshake_buffer = b""
        self._reader: RecordSplitter = RecordReader(max_message_size)
        self.protocol: HubProtocol | None = None
        self.protocol_version = 0
        self.replay: ReplayBuffer | None = None
        self.state = SessionState.AWAITING_HANDSHAKE

    def enable_replay(self, buffer_size: int) -> bool:
        """Turn on stateful reconnect, if the client's protocol version has it."""
        if self.protocol_version < STATEFUL_RECONNECT_VERSION:
            return False
        self.replay = ReplayBuffer(buffer_size)
        return True

    def receive_data(self, data: bytes) -> list[SessionEvent]:
        """Feed bytes from the client; return what they mean, in order."""
        if self.state is SessionState.CLOSED:
            return []
        if self.state is SessionState.OPEN:
            return self._messages(data)
        buffered = self._handshake_buffer + data
        end = buffered.find(RECORD_SEPARATOR)
        if end < 0:
            if self._max_size is not None and len(buffered) > self._max_size:
                self.state = SessionState.CLOSED
                error = "handshake request exceeds the maximum message size"
                return [HandshakeFailed(error, write_handshake_response(error))]
            self._handshake_buffer = buffered
            return []
        self._handshake_buffer = b""
        event = self._handshake(buffered[:end])
        if not isinstance(event, HandshakeCompleted):
            return [event]
        # Bytes after the handshake belong to the chosen protocol's framing.
        self._reader = event.protocol.record_reader(self._max_size)
        return [event, *self._messages(buffered[end + 1 :])]

    def write(self, message: HubMessage) -> bytes:
        """Encode a message for the client with the negotiated protocol."""
        if self.protocol is None:
            raise ProtocolError("no hub protocol before the handshake completes")
        return self.protocol.write_message(message)

    def close(self, error: str | None = None, allow_reconnect: bool = False) -> bytes | None:
        """Move to CLOSED; return the Close message to send, if the handshake had completed."""
        was_open = self.state is SessionState.OPEN
        self.state = SessionState.CLOSED
        if was_open and self.protocol is not None:
            return self.protocol.write_message(CloseMessage(error, allow_reconnect))
        return None

    def _handshake(self, record: bytes) -> SessionEvent:
        try:
            request = parse_handshake_request(record)
        except HandshakeError as exc:
            self.state = SessionState.CLOSED
            return HandshakeFailed(str(exc), write_handshake_response(str(exc)))
        protocol = self._protocols.get(request.protocol)
        if protocol is None:
            error = f"The protocol '{request.protocol}' is not supported."
            self.state = SessionState.CLOSED
            return HandshakeFailed(error, write_handshake_response(error))
        # As ASP.NET Core: every version up to ours (signalrcore 1.0.2 asks for 0).
        if request.version > protocol.version:
            error = (
                f"The server does not support version {request.version} "
                f"of the '{protocol.name}' protocol."
            )
            self.state = SessionState.CLOSED
            return HandshakeFailed(error, write_handshake_response(error))
        self.protocol = protocol
        self.protocol_version = request.version
        self.state = SessionState.OPEN
        return HandshakeCompleted(protocol, write_handshake_response())

    def _messages(self, data: bytes) -> list[SessionEvent]:
        assert self.protocol is not None
        try:
            records = self._reader.feed(data)
        except ProtocolError as exc:
            return [self._violation(str(exc))]
        events: list[SessionEvent] = []
        replay = self.replay
        for record in records:
            try:
                message = self.protocol.parse_record(record)
                if replay is not None:
                    if isinstance(message, AckMessage):
                        replay.ack(message.sequence_id)
                        continue
                    if isinstance(message, SequenceMessage):
                        replay.restart_at(message.sequence_id)
                        continue
                    if isinstance(message, TRACKABLE) and not replay.accept():
                        continue  # a duplicate replayed after a reconnect
                elif isinstance(message, AckMessage | SequenceMessage):
                    continue  # stateful reconnect is off: nothing to track
            except ProtocolError as exc:
                events.append(self._violation(str(exc)))
                break
            events.append(MessageReceived(message))
        return events

    def _violation(self, error: str) -> ProtocolViolation:
        return ProtocolViolation(error, self.close(error))
