"""Sans-IO SignalR protocol: bytes and objects in, bytes and objects out, no sockets."""

from diquis.realtime.protocol.base import HubProtocol, TransferFormat
from diquis.realtime.protocol.handshake import (
    HandshakeRequest,
    parse_handshake_request,
    write_handshake_response,
)
from diquis.realtime.protocol.json_protocol import JsonHubProtocol
from diquis.realtime.protocol.messages import (
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    MessageType,
    PingMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)
from diquis.realtime.protocol.negotiate import (
    AvailableTransport,
    NegotiateResponse,
    TransportType,
    parse_negotiate_version,
)
from diquis.realtime.protocol.records import RECORD_SEPARATOR, RecordReader, write_record
from diquis.realtime.protocol.session import (
    HandshakeCompleted,
    HandshakeFailed,
    MessageReceived,
    ProtocolViolation,
    ServerSession,
    SessionEvent,
    SessionState,
)

__all__ = [
    "RECORD_SEPARATOR",
    "AvailableTransport",
    "CancelInvocationMessage",
    "CloseMessage",
    "CompletionMessage",
    "HandshakeCompleted",
    "HandshakeFailed",
    "HandshakeRequest",
    "HubMessage",
    "HubProtocol",
    "InvocationMessage",
    "JsonHubProtocol",
    "MessageReceived",
    "MessageType",
    "NegotiateResponse",
    "PingMessage",
    "ProtocolViolation",
    "RecordReader",
    "ServerSession",
    "SessionEvent",
    "SessionState",
    "StreamInvocationMessage",
    "StreamItemMessage",
    "TransferFormat",
    "TransportType",
    "parse_handshake_request",
    "parse_negotiate_version",
    "write_handshake_response",
    "write_record",
]
