"""What travels on a backplane: a send to an audience, or a group change, for one hub."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diquis.realtime.audience import Audience, AudienceKind
from diquis.realtime.errors import BackplaneError
from diquis.realtime.protocol.json_protocol import dumps


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


Envelope = SendEnvelope | GroupEnvelope


def encode_send(hub: str, audience: Audience, method: str, arguments: Sequence[Any]) -> str:
    """Encode a send; raises TypeError or ValueError when arguments are not JSON values."""
    body = {
        "h": hub,
        "op": "send",
        "k": audience.kind.value,
        "n": list(audience.names),
        "x": list(audience.excluded),
        "m": method,
        "a": list(arguments),
    }
    return dumps(body).decode()


def encode_group(hub: str, connection_id: str, group: str, add: bool) -> str:
    """Encode a group change."""
    body = {"h": hub, "op": "group", "c": connection_id, "g": group, "add": add}
    return dumps(body).decode()


def decode(payload: str) -> Envelope:
    """Decode a payload written by `encode_send` or `encode_group`."""
    try:
        obj = json.loads(payload)
        if obj["op"] == "send":
            audience = Audience(AudienceKind(obj["k"]), tuple(obj["n"]), tuple(obj["x"]))
            return SendEnvelope(obj["h"], audience, obj["m"], tuple(obj["a"]))
        if obj["op"] == "group":
            return GroupEnvelope(obj["h"], obj["c"], obj["g"], bool(obj["add"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BackplaneError(f"malformed backplane payload: {exc}") from exc
    raise BackplaneError(f"unknown backplane operation {obj.get('op')!r}")
