"""Sans-IO SignalR protocol: bytes and objects in, bytes and objects out, no sockets."""

from .base import HubProtocol, TransferFormat
from .depth import MAX_DEPTH, NestingTooDeepError
from .handshake import (
    HandshakeRequest,
    parse_handshake_request,
    write_handshake_response,
)
from .json_protocol import JsonHubProtocol
from .messages import (
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
from .msgpack_protocol import BinaryRecordReader, MessagePackHubProtocol
from .negotiate import (
    AvailableTransport,
    NegotiateResponse,
    TransportType,
    parse_negotiate_version,
)
from .records import RECORD_SEPARATOR, RecordReader, write_record
from .replay import ReplayBuffer
from .session import (
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
