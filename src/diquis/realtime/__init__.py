"""A SignalR-protocol hub for ASGI apps: transports, hubs, clients, groups and backplanes."""

from diquis.realtime.audience import Audience, AudienceKind
from diquis.realtime.backplane import Backplane, MemoryBackplane, backplane_from_url
from diquis.realtime.clients import CallerClients, ClientProxy, GroupManager, HubClients, HubContext
from diquis.realtime.errors import (
    AuthenticationError,
    BackplaneError,
    HandshakeError,
    HubDefinitionError,
    HubError,
    MessageTooLargeError,
    ProtocolError,
    RealtimeError,
)
from diquis.realtime.hub import Hub, HubCallerContext
from diquis.realtime.identity import ANONYMOUS, Authenticator, AuthRequest, Identity
from diquis.realtime.jwt_auth import jwt_authenticator
from diquis.realtime.lifetime import publisher_context
from diquis.realtime.options import HubOptions
from diquis.realtime.routing import HubRoute
from diquis.realtime.server import HubServer

__all__ = [
    "ANONYMOUS",
    "Audience",
    "AudienceKind",
    "AuthRequest",
    "AuthenticationError",
    "Authenticator",
    "Backplane",
    "BackplaneError",
    "CallerClients",
    "ClientProxy",
    "GroupManager",
    "HandshakeError",
    "Hub",
    "HubCallerContext",
    "HubClients",
    "HubContext",
    "HubDefinitionError",
    "HubError",
    "HubOptions",
    "HubRoute",
    "HubServer",
    "Identity",
    "MemoryBackplane",
    "MessageTooLargeError",
    "ProtocolError",
    "RealtimeError",
    "backplane_from_url",
    "jwt_authenticator",
    "publisher_context",
]
