"""Sans-IO SignalR protocol: bytes and objects in, bytes and objects out, no sockets."""

from diquis.realtime.protocol.base import HubProtocol, TransferFormat
from diquis.realtime.protocol.depth import MAX_DEPTH, NestingTooDeepError
from diquis.realtime.protocol.handshake import (
    HandshakeRequest,
    parse_handshake_request,
    write_handshake_response,
)
from diquis.realtime.protocol.json_protocol import JsonHubProtocol
from diquis.realtime.protocol.messages import (
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    MessageType,
    PingMessage,
    SequenceMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)
from diquis.realtime.protocol.msgpack_protocol import BinaryRecordReader, MessagePackHubProtocol
from diquis.realtime.protocol.negotiate import (
    AvailableTransport,
    NegotiateResponse,
    TransportType,
    parse_negotiate_version,
)
from diquis.realtime.protocol.records import RECORD_SEPARATOR, RecordReader, write_record
from diquis.realtime.protocol.replay import ReplayBuffer
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
    "MAX_DEPTH",
    "RECORD_SEPARATOR",
    "AckMessage",
    "AvailableTransport",
    "BinaryRecordReader",
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
    "MessagePackHubProtocol",
    "MessageReceived",
    "MessageType",
    "NegotiateResponse",
    "NestingTooDeepError",
    "PingMessage",
    "ProtocolViolation",
    "RecordReader",
    "ReplayBuffer",
    "SequenceMessage",
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
