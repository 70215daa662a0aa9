"""A SignalR-protocol hub for ASGI apps: transports, hubs, clients, groups and backplanes."""

from .audience import Audience, AudienceKind
from .backplane import Backplane, MemoryBackplane, backplane_from_url
from .clients import (
    CallerClients,
    ClientProxy,
    GroupManager,
    HubClients,
    HubContext,
    SingleClientProxy,
)
from .errors import (
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
from .hub import Hub, HubCallerContext
from .identity import ANONYMOUS, Authenticator, AuthRequest, Identity
from .jwt_auth import jwt_authenticator
from .lifetime import publisher_context
from .options import HubOptions
from .protocol import JsonHubProtocol, MessagePackHubProtocol
from .routing import HubRoute
from .server import HubServer
from .streams import ClientStream, ClientStreamError

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
