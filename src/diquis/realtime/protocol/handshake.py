"""The handshake: the client names a protocol and version, the server answers {} or an error."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import HandshakeError
from .depth import NestingTooDeepError, check_json_depth
from .records import write_record


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """The client's choice of hub protocol."""

    protocol: str
    version: int


def parse_handshake_request(record: bytes) -> HandshakeRequest:
    """Parse one handshake record (without its separator)."""
    try:
        # A handshake is one flat object: anything nested deeper is hostile.
        check_json_depth(record, 4)
    except NestingTooDeepError as exc:
        raise HandshakeError(f"handshake request {exc}") from None
    try:
        obj = json.loads(record)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HandshakeError("handshake request is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise HandshakeError("handshake request must be a JSON object")
    protocol = obj.get("protocol")
    if not isinstance(protocol, str):
        raise HandshakeError("handshake field 'protocol' is missing or not a string")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise HandshakeError("handshake field 'version' is missing or not an integer")
    return HandshakeRequest(protocol=protocol, version=version)


def write_handshake_response(error: str | None = None) -> bytes:
    """The framed handshake response: `{}` on success, `{"error": ...}` otherwise."""
    body = b"{}" if error is None else json.dumps({"error": error}).encode()
    return write_record(body)
