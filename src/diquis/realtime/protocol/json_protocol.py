"""The JSON hub protocol (name "json", version 2, text transfer format)."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Mapping
from typing import Any

from ..errors import ProtocolError
from .base import HubProtocol, RecordSplitter, TransferFormat
from .depth import check_json_depth
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
from .records import RecordReader, write_record

_PING = write_record(b'{"type":6}')


def _default(value: Any) -> Any:
    # As ASP.NET Core's JSON protocol: bytes as base64 strings, times as ISO 8601 strings.
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and other non-JSON values raise ValueError or TypeError."""
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
    ).encode()


class JsonHubProtocol(HubProtocol):
    """SignalR's JSON hub protocol."""

    name = "json"
    version = 2
    incomplete = "missing record separator"
    transfer_format = TransferFormat.TEXT

    def record_reader(self, max_size: int | None) -> RecordSplitter:
        """A splitter on the 0x1E record separator."""
        return RecordReader(max_size)

    def parse_record(self, record: bytes) -> HubMessage:
        """Parse one JSON record into a hub message."""
        check_json_depth(record, self.max_depth)
        try:
            obj = json.loads(record)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError("message is not valid JSON") from exc
        except RecursionError:
            raise ProtocolError("message nesting is too deep") from None
        if not isinstance(obj, dict):
            raise ProtocolError("message must be a JSON object")
        kind = obj.get("type")
        if not isinstance(kind, int) or isinstance(kind, bool):
            raise ProtocolError("field 'type' is missing or not an integer")
        try:
            message_type = MessageType(kind)
        except ValueError:
            raise ProtocolError(f"unknown message type {kind}") from None
        return _PARSERS[message_type](obj)

    def write_message(self, message: HubMessage) -> bytes:
        """Encode `message` as one framed JSON record."""
        if isinstance(message, PingMessage):
            return _PING
        return write_record(dumps(_to_json(message)))


def _to_json(message: HubMessage) -> dict[str, Any]:
    if isinstance(message, InvocationMessage):
        out: dict[str, Any] = {"type": 1}
        if message.invocation_id is not None:
            out["invocationId"] = message.invocation_id
        out["target"] = message.target
        out["arguments"] = list(message.arguments)
        if message.stream_ids:
            out["streamIds"] = list(message.stream_ids)
    elif isinstance(message, StreamInvocationMessage):
        out = {
            "type": 4,
            "invocationId": message.invocation_id,
            "target": message.target,
            "arguments": list(message.arguments),
        }
        if message.stream_ids:
            out["streamIds"] = list(message.stream_ids)
    elif isinstance(message, StreamItemMessage):
        out = {"type": 2, "invocationId": message.invocation_id, "item": message.item}
    elif isinstance(message, CompletionMessage):
        out = {"type": 3, "invocationId": message.invocation_id}
        if message.error is not None:
            out["error"] = message.error
        elif message.has_result:
            out["result"] = message.result
    elif isinstance(message, CancelInvocationMessage):
        out = {"type": 5, "invocationId": message.invocation_id}
    elif isinstance(message, CloseMessage):
        out = {"type": 7}
        if message.error is not None:
            out["error"] = message.error
        if message.allow_reconnect:
            out["allowReconnect"] = True
        return out
    elif isinstance(message, AckMessage | SequenceMessage):
        kind = 8 if isinstance(message, AckMessage) else 9
        return {"type": kind, "sequenceId": message.sequence_id}
    else:
        out = {"type": 6}
        return out
    headers = message.headers
    if headers:
        out["headers"] = dict(headers)
    return out


def _string(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ProtocolError(f"field '{name}' is missing or not a string")
    return value


def _optional_string(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"field '{name}' must be a string")
    return value


def _arguments(obj: Mapping[str, Any]) -> tuple[Any, ...]:
    value = obj.get("arguments")
    if not isinstance(value, list):
        raise ProtocolError("field 'arguments' is missing or not an array")
    return tuple(value)


def _stream_ids(obj: Mapping[str, Any]) -> tuple[str, ...]:
    value = obj.get("streamIds")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError("field 'streamIds' must be an array of strings")
    return tuple(value)


def _headers(obj: Mapping[str, Any]) -> Mapping[str, str]:
    value = obj.get("headers")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProtocolError("field 'headers' must be an object of strings")
    return value


def _invocation(obj: Mapping[str, Any]) -> HubMessage:
    return InvocationMessage(
        target=_string(obj, "target"),
        arguments=_arguments(obj),
        invocation_id=_optional_string(obj, "invocationId"),
        stream_ids=_stream_ids(obj),
        headers=_headers(obj),
    )


def _stream_invocation(obj: Mapping[str, Any]) -> HubMessage:
    return StreamInvocationMessage(
        invocation_id=_string(obj, "invocationId"),
        target=_string(obj, "target"),
        arguments=_arguments(obj),
        stream_ids=_stream_ids(obj),
        headers=_headers(obj),
    )


def _stream_item(obj: Mapping[str, Any]) -> HubMessage:
    if "item" not in obj:
        raise ProtocolError("field 'item' is missing")
    return StreamItemMessage(
        invocation_id=_string(obj, "invocationId"), item=obj["item"], headers=_headers(obj)
    )


def _completion(obj: Mapping[str, Any]) -> HubMessage:
    invocation_id = _string(obj, "invocationId")
    error = _optional_string(obj, "error")
    if error is not None and "result" in obj:
        raise ProtocolError("a completion must not carry both 'result' and 'error'")
    if error is not None:
        return CompletionMessage(invocation_id=invocation_id, error=error, headers=_headers(obj))
    return CompletionMessage(
        invocation_id=invocation_id,
        result=obj.get("result"),
        has_result="result" in obj,
        headers=_headers(obj),
    )


def _cancel(obj: Mapping[str, Any]) -> HubMessage:
    return CancelInvocationMessage(
        invocation_id=_string(obj, "invocationId"), headers=_headers(obj)
    )


def _ping(obj: Mapping[str, Any]) -> HubMessage:
    return PingMessage()


def _close(obj: Mapping[str, Any]) -> HubMessage:
    allow = obj.get("allowReconnect", False)
    if not isinstance(allow, bool):
        raise ProtocolError("field 'allowReconnect' must be a boolean")
    return CloseMessage(error=_optional_string(obj, "error"), allow_reconnect=allow)


def _sequence_id(obj: Mapping[str, Any]) -> int:
    value = obj.get("sequenceId")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError("field 'sequenceId' is missing or not a non-negative integer")
    return value


def _ack(obj: Mapping[str, Any]) -> HubMessage:
    return AckMessage(_sequence_id(obj))


def _sequence(obj: Mapping[str, Any]) -> HubMessage:
    return SequenceMessage(_sequence_id(obj))


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
