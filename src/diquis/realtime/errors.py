"""The one exception hierarchy of `diquis.realtime`."""

from __future__ import annotations


class RealtimeError(Exception):
    """Base class of every error raised by `diquis.realtime`."""


class ProtocolError(RealtimeError):
    """Bytes from a peer that break the SignalR handshake or hub protocol."""


class MessageTooLargeError(ProtocolError):
    """An incoming message is larger than the configured maximum."""


class HandshakeError(ProtocolError):
    """A handshake request that cannot be accepted."""


class HubError(RealtimeError):
    """Raised by hub code on purpose: its message is sent to the calling client."""


class HubDefinitionError(RealtimeError):
    """A Hub subclass that cannot be served (e.g. two methods with one wire name)."""


class AuthenticationError(RealtimeError):
    """Raised by an authenticator to refuse a request (answered with 401)."""


class BackplaneError(RealtimeError):
    """A backplane that cannot be configured or reached."""


class ClientResultError(RealtimeError):
    """A client result call failed: the client answered with an error, or it disconnected."""
