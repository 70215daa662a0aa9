"""Negotiate payloads (versions 0 and 1) and the transports they advertise."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ProtocolError
from .base import TransferFormat

MAX_NEGOTIATE_VERSION = 1


class TransportType(enum.Enum):
    """The three SignalR transports."""

    WEBSOCKETS = "WebSockets"
    SERVER_SENT_EVENTS = "ServerSentEvents"
    LONG_POLLING = "LongPolling"


@dataclass(frozen=True, slots=True)
class AvailableTransport:
    """One transport and the transfer formats it carries."""

    transport: TransportType
    transfer_formats: tuple[TransferFormat, ...]


DEFAULT_TRANSPORTS = (
    AvailableTransport(TransportType.WEBSOCKETS, (TransferFormat.TEXT, TransferFormat.BINARY)),
    AvailableTransport(TransportType.SERVER_SENT_EVENTS, (TransferFormat.TEXT,)),
    AvailableTransport(TransportType.LONG_POLLING, (TransferFormat.TEXT, TransferFormat.BINARY)),
)


def parse_negotiate_version(raw: str | None) -> int:
    """The version to answer with, from the `negotiateVersion` query value."""
    if raw is None or raw == "":
        return 0
    try:
        requested = int(raw)
    except ValueError:
        raise ProtocolError("query parameter 'negotiateVersion' must be an integer") from None
    if requested < 0:
        raise ProtocolError("query parameter 'negotiateVersion' must not be negative")
    return min(requested, MAX_NEGOTIATE_VERSION)


@dataclass(frozen=True, slots=True)
class NegotiateResponse:
    """The body of a successful negotiate answer."""

    connection_id: str
    connection_token: str
    version: int
    transports: Sequence[AvailableTransport] = DEFAULT_TRANSPORTS
    stateful_reconnect: bool = False

    def to_json(self) -> bytes:
        """Encode as the version's JSON payload (v0 has no connectionToken)."""
        body: dict[str, object] = {"connectionId": self.connection_id}
        if self.version >= 1:
            body["connectionToken"] = self.connection_token
        body["negotiateVersion"] = self.version
        body["availableTransports"] = [
            {
                "transport": t.transport.value,
                "transferFormats": [f.value for f in t.transfer_formats],
            }
            for t in self.transports
        ]
        if self.stateful_reconnect:
            body["useStatefulReconnect"] = True
        return json.dumps(body, separators=(",", ":")).encode()


def negotiate_error(message: str) -> bytes:
    """A negotiate answer that stops the client's connection attempt."""
    return json.dumps({"error": message}).encode()
