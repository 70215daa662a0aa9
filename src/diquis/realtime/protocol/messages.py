"""Hub messages as plain dataclasses, one per message type of the hub protocol."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class MessageType(enum.IntEnum):
    """The numeric `type` field of every hub message."""

    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7
    ACK = 8
    SEQUENCE = 9


@dataclass(frozen=True, slots=True)
class InvocationMessage:
    """Call a method on the other side; no invocation id means no reply is wanted."""

    target: str
    arguments: tuple[Any, ...] = ()
    invocation_id: str | None = None
    stream_ids: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamInvocationMessage:
    """Call a streaming method; results come back as StreamItems then a Completion."""

    invocation_id: str
    target: str
    arguments: tuple[Any, ...] = ()
    stream_ids: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamItemMessage:
    """One item of a stream."""

    invocation_id: str
    item: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompletionMessage:
    """The end of an invocation: a result, an error, or neither (void)."""

    invocation_id: str
    result: Any = None
    error: str | None = None
    has_result: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def with_result(cls, invocation_id: str, result: Any) -> CompletionMessage:
        """A successful completion carrying `result`."""
        return cls(invocation_id=invocation_id, result=result, has_result=True)

    @classmethod
    def with_error(cls, invocation_id: str, error: str) -> CompletionMessage:
        """A failed completion carrying `error`."""
        return cls(invocation_id=invocation_id, error=error)


@dataclass(frozen=True, slots=True)
class CancelInvocationMessage:
    """Ask the other side to stop a stream."""

    invocation_id: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PingMessage:
    """Keep-alive; carries nothing."""


@dataclass(frozen=True, slots=True)
class CloseMessage:
    """The connection is closing, optionally with an error and a hint to reconnect."""

    error: str | None = None
    allow_reconnect: bool = False


@dataclass(frozen=True, slots=True)
class AckMessage:
    """Stateful reconnect: every trackable message up to `sequence_id` arrived."""

    sequence_id: int


@dataclass(frozen=True, slots=True)
class SequenceMessage:
    """Stateful reconnect: the next trackable message sent carries `sequence_id`."""

    sequence_id: int


HubMessage = (
    InvocationMessage
    | StreamInvocationMessage
    | StreamItemMessage
    | CompletionMessage
    | CancelInvocationMessage
    | PingMessage
    | CloseMessage
    | AckMessage
    | SequenceMessage
)

TRACKABLE = (
    InvocationMessage,
    StreamInvocationMessage,
    StreamItemMessage,
    CompletionMessage,
    CancelInvocationMessage,
)
"""The message types that carry an (implicit) sequence id under stateful reconnect."""
