"""The MessagePack hub protocol (name "messagepack", version 2, binary transfer format)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import msgpack

from ..errors import MessageTooLargeError, ProtocolError
from .base import HubProtocol, RecordSplitter, TransferFormat
from .depth import NestingTooDeepError, check_value_depth
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

ERROR_RESULT = 1
VOID_RESULT = 2
NON_VOID_RESULT = 3
MAX_LENGTH = 0x7FFFFFFF  # the spec's largest frame: a 5-byte varint at most


def write_varint(length: int) -> bytes:
    """The spec's length prefix: 7 bits a byte, least significant first."""
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def frame(body: bytes) -> bytes:
    """Prefix one MessagePack body with its varint length."""
    return write_varint(len(body)) + body


class BinaryRecordReader:
    """Split a byte stream into varint-length-prefixed records, buffering partial ones."""

    __slots__ = ("_buffer", "_max_size")

    def __init__(self, max_size: int | None = None) -> None:
        self._buffer = b""
        self._max_size = max_size

    @property
    def pending(self) -> int:
        """How many bytes of an unfinished record are buffered."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Return the records completed by `data` (without their length prefixes)."""
        buffered = self._buffer + data if self._buffer else data
        records: list[bytes] = []
        position = 0
        end = len(buffered)
        limit = self._max_size
        while position < end:
            length = 0
            shift = 0
            cursor = position
            while True:
                if cursor >= end:
                    self._buffer = buffered[position:]
                    return records
                byte = buffered[cursor]
                cursor += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 28:
                    raise ProtocolError("message length prefix is longer than 5 bytes")
            if length > MAX_LENGTH:
                raise ProtocolError("message length prefix exceeds 2 GiB")
            if limit is not None and length > limit:
                raise MessageTooLargeError(f"message exceeds the maximum size of {limit} bytes")
            if cursor + length > end:
                break
            records.append(buffered[cursor : cursor + length])
            position = cursor + length
        self._buffer = buffered[position:]
        return records


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        # A naive time is taken as UTC; the wire form (Timestamp) carries no zone.
        return msgpack.Timestamp.from_datetime(value.replace(tzinfo=datetime.UTC))
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not MessagePack serializable")


def pack_value(value: Any) -> bytes:
    """MessagePack bytes for `value` (datetimes as Timestamps); TypeError if not encodable."""
    body: bytes = msgpack.packb(value, use_bin_type=True, datetime=True, default=_default)
    return body


class MessagePackHubProtocol(HubProtocol):
    """SignalR's MessagePack hub protocol: nil, bool, int, float, str, bin, arrays, maps and
    timestamps (read as timezone-aware UTC datetimes)."""

    name = "messagepack"
    version = 2
    incomplete = "shorter than its length prefix"
    transfer_format = TransferFormat.BINARY

    def record_reader(self, max_size: int | None) -> RecordSplitter:
        """A splitter on the varint length prefix."""
        return BinaryRecordReader(max_size)

    def parse_record(self, record: bytes) -> HubMessage:
        """Parse one MessagePack body into a hub message."""
        try:
            items = msgpack.unpackb(record, raw=False, timestamp=3, strict_map_key=False)
        except msgpack.StackError:
            raise NestingTooDeepError(self.max_depth) from None
        except (ValueError, msgpack.UnpackException, TypeError) as exc:
            raise ProtocolError("message is not valid MessagePack") from exc
        if not isinstance(items, list) or not items:
            raise ProtocolError("message must be a non-empty MessagePack array")
        # The message array itself is one level; its payloads may use the rest.
        check_value_depth(items, self.max_depth + 1)
        kind = items[0]
        if not isinstance(kind, int) or isinstance(kind, bool):
            raise ProtocolError("message type is not an integer")
        try:
            message_type = MessageType(kind)
        except ValueError:
            raise ProtocolError(f"unknown message type {kind}") from None
        return _PARSERS[message_type](items)

    def write_message(self, message: HubMessage) -> bytes:
        """Encode `message` as one length-prefixed MessagePack record."""
        return frame(pack_value(_to_array(message)))


def _to_array(message: HubMessage) -> list[Any]:
    if isinstance(message, InvocationMessage):
        out: list[Any] = [
            1,
            dict(message.headers),
            message.invocation_id,
            message.target,
            list(message.arguments),
        ]
        if message.stream_ids:
            out.append(list(message.stream_ids))
        return out
    if isinstance(message, StreamInvocationMessage):
        return [
            4,
            dict(message.headers),
            message.invocation_id,
            message.target,
            list(message.arguments),
            list(message.stream_ids),
        ]
    if isinstance(message, StreamItemMessage):
        return [2, dict(message.headers), message.invocation_id, message.item]
    if isinstance(message, CompletionMessage):
        head = [3, dict(message.headers), message.invocation_id]
        if message.error is not None:
            return [*head, ERROR_RESULT, message.error]
        if message.has_result:
            return [*head, NON_VOID_RESULT, message.result]
        return [*head, VOID_RESULT]
    if isinstance(message, CancelInvocationMessage):
        return [5, dict(message.headers), message.invocation_id]
    if isinstance(message, CloseMessage):
        return [7, message.error, message.allow_reconnect]
    if isinstance(message, AckMessage):
        return [8, message.sequence_id]
    if isinstance(message, SequenceMessage):
        return [9, message.sequence_id]
    return [6]


def _need(items: list[Any], count: int, what: str) -> None:
    if len(items) < count:
        raise ProtocolError(f"{what} message has {len(items)} items, expected at least {count}")


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} is not a string")
    return value


def _headers(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProtocolError("headers must be a map of strings")
    return value


def _arguments(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise ProtocolError("arguments are not an array")
    return tuple(value)


def _stream_ids(items: list[Any]) -> tuple[str, ...]:
    if len(items) < 6 or items[5] is None:
        return ()
    value = items[5]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError("stream ids must be an array of strings")
    return tuple(value)


def _invocation(items: list[Any]) -> HubMessage:
    _need(items, 5, "Invocation")
    invocation_id = items[2]
    if invocation_id is not None:
        invocation_id = _string(invocation_id, "invocation id")
    return InvocationMessage(
        target=_string(items[3], "target"),
        arguments=_arguments(items[4]),
        invocation_id=invocation_id,
        stream_ids=_stream_ids(items),
        headers=_headers(items[1]),
    )


def _stream_invocation(items: list[Any]) -> HubMessage:
    _need(items, 5, "StreamInvocation")
    return StreamInvocationMessage(
        invocation_id=_string(items[2], "invocation id"),
        target=_string(items[3], "target"),
        arguments=_arguments(items[4]),
        stream_ids=_stream_ids(items),
        headers=_headers(items[1]),
    )


def _stream_item(items: list[Any]) -> HubMessage:
    _need(items, 4, "StreamItem")
    return StreamItemMessage(
        invocation_id=_string(items[2], "invocation id"), item=items[3], headers=_headers(items[1])
    )


def _completion(items: list[Any]) -> HubMessage:
    _need(items, 4, "Completion")
    invocation_id = _string(items[2], "invocation id")
    headers = _headers(items[1])
    kind = items[3]
    if kind == VOID_RESULT:
        return CompletionMessage(invocation_id=invocation_id, headers=headers)
    if kind not in (ERROR_RESULT, NON_VOID_RESULT):
        raise ProtocolError(f"unknown completion result kind {kind!r}")
    _need(items, 5, "Completion")
    if kind == ERROR_RESULT:
        return CompletionMessage(
            invocation_id=invocation_id, error=_string(items[4], "error"), headers=headers
        )
    return CompletionMessage(
        invocation_id=invocation_id, result=items[4], has_result=True, headers=headers
    )


def _cancel(items: list[Any]) -> HubMessage:
    _need(items, 3, "CancelInvocation")
    return CancelInvocationMessage(
        invocation_id=_string(items[2], "invocation id"), headers=_headers(items[1])
    )


def _ping(items: list[Any]) -> HubMessage:
    return PingMessage()


def _close(items: list[Any]) -> HubMessage:
    _need(items, 2, "Close")
    error = items[1]
    if error is not None:
        error = _string(error, "error")
    allow = items[2] if len(items) > 2 else False
    if not isinstance(allow, bool):
        raise ProtocolError("allowReconnect is not a boolean")
    return CloseMessage(error=error, allow_reconnect=allow)


def _sequence_id(items: list[Any], what: str) -> int:
    _need(items, 2, what)
    value = items[1]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError("sequence id is not a non-negative integer")
    return value


def _ack(items: list[Any]) -> HubMessage:
    return AckMessage(_sequence_id(items, "Ack"))


def _sequence(items: list[Any]) -> HubMessage:
    return SequenceMessage(_sequence_id(items, "Sequence"))


_PARSERS = {
    MessageType.INVOCATION: _invocation,
    MessageType.STREAM_ITEM: _stream_item,
    MessageType.COMPLETION: _completion,
    MessageType.STREAM_INVOCATION: _stream_invocation,
    MessageType.CANCEL_INVOCATION: _cancel,
    MessageType.PING: _ping,
    MessageType.CLOSE: _close,
    MessageType.ACK: _ack,
    MessageType.SEQUENCE: _sequence,
}
