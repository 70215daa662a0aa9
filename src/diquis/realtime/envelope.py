"""What travels on a backplane: a send, a group change, a client-result call or its answer.

Payloads are MessagePack (so binary and timestamp arguments survive the trip for MessagePack
clients), base64-encoded because every backplane carries text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from .audience import Audience, AudienceKind
from .errors import BackplaneError
from .protocol.msgpack_protocol import pack_value


@dataclass(frozen=True, slots=True)
class SendEnvelope:
    """Invoke `method` on every connection of `audience` of hub `hub`."""

    hub: str
    audience: Audience
    method: str
    arguments: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class GroupEnvelope:
    """Add (or remove) a connection to (or from) a group of hub `hub`."""

    hub: str
    connection_id: str
    group: str
    add: bool


@dataclass(frozen=True, slots=True)
class InvokeEnvelope:
    """Ask connection `connection_id` for a result; answer to `reply_to` with `call_id`."""

    hub: str
    connection_id: str
    method: str
    arguments: tuple[Any, ...]
    reply_to: str
    call_id: str


@dataclass(frozen=True, slots=True)
class ResultEnvelope:
    """The answer to an InvokeEnvelope: a result, or an error."""

    hub: str
    reply_to: str
    call_id: str
    result: Any = None
    error: str | None = None


Envelope = SendEnvelope | GroupEnvelope | InvokeEnvelope | ResultEnvelope


def _text(body: dict[str, Any]) -> str:
    return base64.b64encode(pack_value(body)).decode("ascii")


def encode_send(hub: str, audience: Audience, method: str, arguments: Sequence[Any]) -> str:
    """Encode a send; raises TypeError or ValueError when arguments cannot be serialized."""
    return _text(
        {
            "h": hub,
            "op": "send",
            "k": audience.kind.value,
            "n": list(audience.names),
            "x": list(audience.excluded),
            "m": method,
            "a": list(arguments),
        }
    )


def encode_group(hub: str, connection_id: str, group: str, add: bool) -> str:
    """Encode a group change."""
    return _text({"h": hub, "op": "group", "c": connection_id, "g": group, "add": add})


def encode_invoke(envelope: InvokeEnvelope) -> str:
    """Encode a client-result call."""
    return _text(
        {
            "h": envelope.hub,
            "op": "invoke",
            "c": envelope.connection_id,
            "m": envelope.method,
            "a": list(envelope.arguments),
            "r": envelope.reply_to,
            "i": envelope.call_id,
        }
    )


def encode_result(envelope: ResultEnvelope) -> str:
    """Encode the answer to a client-result call."""
    return _text(
        {
            "h": envelope.hub,
            "op": "result",
            "r": envelope.reply_to,
            "i": envelope.call_id,
            "v": envelope.result,
            "e": envelope.error,
        }
    )


def decode(payload: str) -> Envelope:
    """Decode a payload written by one of the encode functions."""
    try:
        obj = msgpack.unpackb(
            base64.b64decode(payload, validate=True), raw=False, timestamp=3, strict_map_key=False
        )
        op = obj["op"]
        if op == "send":
            audience = Audience(AudienceKind(obj["k"]), tuple(obj["n"]), tuple(obj["x"]))
            return SendEnvelope(obj["h"], audience, obj["m"], tuple(obj["a"]))
        if op == "group":
            return GroupEnvelope(obj["h"], obj["c"], obj["g"], bool(obj["add"]))
        if op == "invoke":
            return InvokeEnvelope(obj["h"], obj["c"], obj["m"], tuple(obj["a"]), obj["r"], obj["i"])
        if op == "result":
            return ResultEnvelope(obj["h"], obj["r"], obj["i"], obj["v"], obj["e"])
    except (ValueError, KeyError, TypeError, binascii.Error, msgpack.UnpackException) as exc:
        raise BackplaneError(f"malformed backplane payload: {exc}") from exc
    raise BackplaneError(f"unknown backplane operation {op!r}")
