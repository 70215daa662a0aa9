"""A SignalR-protocol hub for ASGI apps: transports, hubs, clients, groups and backplanes."""

from diquis.realtime.audience import Audience, AudienceKind
from diquis.realtime.backplane import Backplane, MemoryBackplane, backplane_from_url
from diquis.realtime.clients import (
    CallerClients,
    ClientProxy,
    GroupManager,
    HubClients,
    HubContext,
    SingleClientProxy,
)
from diquis.realtime.errors import (
    AuthenticationError,
    BackplaneError,
    ClientResultError,
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
from diquis.realtime.protocol import JsonHubProtocol, MessagePackHubProtocol
from diquis.realtime.routing import HubRoute
from diquis.realtime.server import HubServer
from diquis.realtime.streams import ClientStream, ClientStreamError

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
    "ClientResultError",
    "ClientStream",
    "ClientStreamError",
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
    "JsonHubProtocol",
    "MemoryBackplane",
    "MessagePackHubProtocol",
    "MessageTooLargeError",
    "ProtocolError",
    "RealtimeError",
    "SingleClientProxy",
    "backplane_from_url",
    "jwt_authenticator",
    "publisher_context",
]
