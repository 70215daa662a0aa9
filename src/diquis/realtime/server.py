"""HubServer: the ASGI app serving one hub over every transport, with its context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

from . import logfilter
from .backplane import Backplane, MemoryBackplane, backplane_from_url
from .clients import CallerClients, GroupManager, HubContext
from .connection import HubConnection
from .dispatch import HubMethods
from .errors import AuthenticationError, ProtocolError
from .hub import Hub, HubCallerContext, bind_hub
from .identity import ANONYMOUS, Authenticator, AuthRequest, Identity
from .invocations import Invoker
from .keepalive import TOKEN_EXPIRED, run_sweeper
from .lifetime import HubLifetime
from .options import HubOptions
from .protocol.base import HubProtocol
from .protocol.json_protocol import JsonHubProtocol
from .protocol.messages import HubMessage
from .protocol.msgpack_protocol import MessagePackHubProtocol
from .protocol.negotiate import (
    NegotiateResponse,
    TransportType,
    negotiate_error,
    parse_negotiate_version,
)
from .protocol.session import ServerSession
from .registry import LocalConnections
from .transports.host import (
    Receive,
    Refused,
    Scope,
    Send,
    header_value,
    query_params,
    query_value,
    respond,
)
from .transports.http_send import serve_send
from .transports.long_polling import serve_delete, serve_poll
from .transports.sse import serve_event_stream
from .transports.websocket import deny, serve_websocket

log = logging.getLogger(__name__)

SHUTDOWN = "Server is shutting down."


class HubServer:
    """Serves one Hub subclass at the path it is mounted on; an ASGI application."""

    def __init__(
        self,
        hub: type[Hub],
        *,
        name: str | None = None,
        options: HubOptions | None = None,
        authenticator: Authenticator | None = None,
        backplane: Backplane | str | None = None,
        protocols: Sequence[HubProtocol] | None = None,
    ) -> None:
        self.hub_type = hub
        self.name = name or hub.__name__
        self.options = options or HubOptions()
        self.authenticator = authenticator
        self._owns_backplane = not isinstance(backplane, Backplane)
        if isinstance(backplane, str):
            backplane = backplane_from_url(backplane)
        self.backplane: Backplane = backplane or MemoryBackplane()
        self.protocols: tuple[HubProtocol, ...] = tuple(
            protocols or (JsonHubProtocol(), MessagePackHubProtocol())
        )
        self._protocols_by_name = {p.name: p for p in self.protocols}
        self.connections = LocalConnections()
        self.lifetime = HubLifetime(self.backplane, self.name, self.connections, self.protocols)
        self.context = HubContext(self.lifetime)
        self._invoker = Invoker(
            HubMethods(hub),
            self._make_hub,
            self.options.detailed_errors,
            self.lifetime.take_completion,
        )
        self._by_token: dict[str, HubConnection] = {}
        # Connections per user (until closed) and negotiated-but-not-yet-open ones, for caps.
        self._per_user: dict[str, int] = {}
        self._pending = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._start_lock: asyncio.Lock | None = None
        self._started = False
        logfilter.install()

    # -- life cycle -------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """True between start() and stop()."""
        return self._started

    async def start(self) -> None:
        """Subscribe to the backplane and start the keep-alive sweeper (idempotent)."""
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            await self.backplane.subscribe(self.lifetime.on_backplane)
            self._sweeper = asyncio.get_running_loop().create_task(
                run_sweeper(lambda: self._by_token.values(), self.options, self.forget),
                name=f"diquis-hub-{self.name}-sweeper",
            )
            self._started = True

    async def stop(self) -> None:
        """Close every connection (inviting clients to reconnect) and release the backplane."""
        if not self._started:
            return
        self._started = False
        for connection in list(self._by_token.values()):
            await connection.close(SHUTDOWN, allow_reconnect=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.backplane.unsubscribe(self.lifetime.on_backplane)
        if self._owns_backplane:
            await self.backplane.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """A lifespan for Starlette (`lifespan=hub.lifespan`) or `async with`."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route negotiate, WebSocket, SSE, poll, send and delete requests."""
        kind = scope["type"]
        if kind == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if kind not in ("http", "websocket"):
            return
        await self.start()
        path = _route_path(scope)
        if kind == "websocket":
            if path in ("", "/"):
                await serve_websocket(self, scope, receive, send)
            else:
                await receive()
                await deny(scope, send, 404, "Not Found")
            return
        method = scope["method"]
        if path.rstrip("/") == "/negotiate":
            if method == "POST":
                await self._negotiate(scope, send)
            else:
                await respond(send, 405, b"Method Not Allowed")
        elif path in ("", "/"):
            if method == "GET":
                accept = header_value(scope, b"accept") or ""
                if "text/event-stream" in accept:
                    await serve_event_stream(self, scope, receive, send)
                else:
                    await serve_poll(self, scope, receive, send)
            elif method == "POST":
                await serve_send(self, scope, receive, send)
            elif method == "DELETE":
                await serve_delete(self, scope, receive, send)
            else:
                await respond(send, 405, b"Method Not Allowed")
        else:
            await respond(send, 404, b"Not Found")

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _negotiate(self, scope: Scope, send: Send) -> None:
        try:
            identity = await self.authenticate(scope, None)
            version = parse_negotiate_version(query_value(scope, "negotiateVersion"))
            connection = self.new_connection(identity, token_is_id=version == 0)
        except Refused as refused:
            await respond(send, refused.status, refused.detail.encode())
            return
        except ProtocolError as exc:
            await respond(send, 400, negotiate_error(str(exc)), "application/json")
            return
        # Stateful reconnect needs a connection token to come back with (negotiate v1).
        connection.stateful = (
            self.options.allow_stateful_reconnect
            and version >= 1
            and query_value(scope, "useStatefulReconnect") == "true"
        )
        body = NegotiateResponse(
            connection.id, connection.token, version, stateful_reconnect=connection.stateful
        ).to_json()
        await respond(send, 200, body, "application/json")

    # -- TransportHost -------------------------------------------------------------------

    def now(self) -> float:
        """The server's clock."""
        return self.options.clock()

    async def authenticate(self, scope: Scope, transport: TransportType | None) -> Identity:
        """Run the authenticator; raises Refused(401) when it refuses."""
        if self.authenticator is None:
            return ANONYMOUS
        token = None
        authorization = header_value(scope, b"authorization")
        if authorization and authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip() or None
        if token is None and transport in (
            TransportType.WEBSOCKETS,
            TransportType.SERVER_SENT_EVENTS,
        ):
            # Browsers cannot set headers on WebSocket or EventSource requests.
            token = query_value(scope, "access_token")
        request = AuthRequest(
            token=token,
            headers={
                bytes(k).decode("latin-1"): bytes(v).decode("latin-1")
                for k, v in scope.get("headers", ())
            },
            query=query_params(scope),
            transport=transport,
            client=scope.get("client"),
        )
        try:
            identity = await self.authenticator(request)
        except AuthenticationError:
            identity = None
        except Exception:
            log.exception("authenticator failed")
            identity = None
        if identity is None:
            expired = self._expired_connection(scope)
            if expired is not None:
                # The client's token ran out under a live connection: let this request
                # carry the Close message that says so, rather than a bare 401.
                await expired.close(TOKEN_EXPIRED)
                return expired.identity
            raise Refused(401, "Unauthorized")
        return identity

    def _expired_connection(self, scope: Scope) -> HubConnection | None:
        if not self.options.close_on_token_expiry:
            return None
        token = query_value(scope, "id")
        connection = self._by_token.get(token) if token else None
        if connection is None or connection.closed or not connection.is_open:
            return None
        if not self.token_expired(connection):
            return None
        return connection

    def token_expired(self, connection: HubConnection) -> bool:
        """True when the connection's credentials have expired."""
        expires_at = connection.identity.expires_at
        return expires_at is not None and self.options.wall_clock() >= expires_at

    def new_connection(self, identity: Identity, token_is_id: bool = False) -> HubConnection:
        """Create and track a connection awaiting its transport and handshake.

        Raises Refused(429) past `max_pending_negotiations` or `max_connections_per_user`.
        """
        options = self.options
        if options.max_pending_negotiations is not None and (
            self._pending >= options.max_pending_negotiations
        ):
            raise Refused(429, "Too many pending connections.")
        user = identity.user_id
        if (
            user is not None
            and options.max_connections_per_user is not None
            and self._per_user.get(user, 0) >= options.max_connections_per_user
        ):
            raise Refused(429, "Too many connections for this user.")
        self._pending += 1
        if user is not None:
            self._per_user[user] = self._per_user.get(user, 0) + 1
        connection_id = secrets.token_urlsafe(16)
        token = connection_id if token_is_id else secrets.token_urlsafe(24)
        connection = HubConnection(
            self,
            connection_id,
            token,
            identity,
            ServerSession(self._protocols_by_name, self.options.max_message_size),
            self.now(),
            self.options.max_buffered_bytes,
        )
        self._by_token[token] = connection
        return connection

    def find_connection(self, scope: Scope, identity: Identity) -> HubConnection:
        """The connection of the `id` query parameter, for the same user."""
        token = query_value(scope, "id")
        if not token:
            raise Refused(400, "Connection ID required")
        connection = self._by_token.get(token)
        if connection is None:
            raise Refused(404, "No Connection with that ID")
        if connection.identity.user_id != identity.user_id:
            raise Refused(403, "Forbidden")
        return connection

    def forget(self, connection: HubConnection) -> None:
        """Stop resolving the connection's token."""
        if self._by_token.get(connection.token) is connection:
            del self._by_token[connection.token]

    # -- ConnectionHost ------------------------------------------------------------------

    async def connection_opened(self, connection: HubConnection) -> None:
        """Index the connection and run the hub's on_connected."""
        if connection.pending:
            connection.pending = False
            self._pending -= 1
        if connection.stateful:
            # Only when the client's hub protocol version has Ack and Sequence messages.
            connection.session.enable_replay(self.options.stateful_reconnect_buffer_size)
        self.connections.add(connection)
        try:
            await self._make_hub(connection).on_connected()
        except Exception:
            log.exception("on_connected failed for %s", connection.id)
            await connection.close("An unexpected error occurred in on_connected.")

    async def dispatch(self, connection: HubConnection, message: HubMessage) -> None:
        """Hand a client message to the invoker."""
        await self._invoker.handle(connection, message)

    async def connection_closed(self, connection: HubConnection, error: str | None) -> None:
        """Unindex the connection and run the hub's on_disconnected."""
        connection.closed_at = self.now()
        if connection.pending:
            connection.pending = False
            self._pending -= 1
        user = connection.user_id
        if user is not None:
            left = self._per_user.get(user, 0) - 1
            if left > 0:
                self._per_user[user] = left
            else:
                self._per_user.pop(user, None)
        if connection.id not in self.connections.by_id:
            return
        self.connections.remove(connection)
        self.lifetime.connection_gone(connection)
        try:
            await self._make_hub(connection).on_disconnected(error)
        except Exception:
            log.exception("on_disconnected failed for %s", connection.id)

    def _make_hub(self, connection: HubConnection) -> Hub:
        return bind_hub(
            self.hub_type,
            HubCallerContext(connection.id, connection.identity, connection.items),
            CallerClients(self.lifetime, connection.id),
            GroupManager(self.lifetime),
        )


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path
