"""Client proxies: `clients.user("42").send("Notify", payload)` and friends."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .audience import Audience, AudienceKind, MessageSender


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a list of strings, not a single string")
    names = tuple(values)
    if not all(isinstance(v, str) for v in names):
        raise TypeError(f"{what} must contain only strings")
    return names


class ClientProxy:
    """Sends invocations to one audience."""

    __slots__ = ("_audience", "_sender")

    def __init__(self, sender: MessageSender, audience: Audience) -> None:
        self._sender = sender
        self._audience = audience

    @property
    def audience(self) -> Audience:
        """The connections this proxy addresses."""
        return self._audience

    async def send(self, method: str, *args: Any) -> None:
        """Invoke the client-side handler `method` with `args` on every addressed connection."""
        if not isinstance(method, str) or not method:
            raise TypeError("method must be a non-empty string")
        await self._sender.send(self._audience, method, args)


class SingleClientProxy(ClientProxy):
    """A proxy for exactly one connection, which can also ask it for a result."""

    __slots__ = ()

    async def invoke(self, method: str, *args: Any, timeout: float = 30.0) -> Any:
        """Invoke the client's handler `method` and return what it returns.

        Raises ClientResultError when the client answers with an error or disconnects first,
        and TimeoutError when no answer comes within `timeout` seconds.
        """
        if not isinstance(method, str) or not method:
            raise TypeError("method must be a non-empty string")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        return await self._sender.invoke(self._audience.names[0], method, args, timeout)


class HubClients:
    """Every way to address clients from anywhere in the app."""

    __slots__ = ("_sender",)

    def __init__(self, sender: MessageSender) -> None:
        self._sender = sender

    def _proxy(
        self, kind: AudienceKind, names: tuple[str, ...] = (), excluded: Iterable[str] = ()
    ) -> ClientProxy:
        return ClientProxy(self._sender, Audience(kind, names, _names(excluded, "excluded")))

    @property
    def all(self) -> ClientProxy:
        """Every connection of the hub."""
        return self._proxy(AudienceKind.ALL)

    def all_except(self, connection_ids: Iterable[str]) -> ClientProxy:
        """Every connection but the given ones."""
        return self._proxy(AudienceKind.ALL, (), connection_ids)

    def client(self, connection_id: str) -> SingleClientProxy:
        """One connection (which can also be asked for a result with `invoke`)."""
        names = _names([connection_id], "connection_id")
        return SingleClientProxy(self._sender, Audience(AudienceKind.CONNECTIONS, names))

    def clients(self, connection_ids: Iterable[str]) -> ClientProxy:
        """Several connections."""
        return self._proxy(AudienceKind.CONNECTIONS, _names(connection_ids, "connection_ids"))

    def user(self, user_id: str) -> ClientProxy:
        """Every connection of one user."""
        return self._proxy(AudienceKind.USERS, _names([user_id], "user_id"))

    def users(self, user_ids: Iterable[str]) -> ClientProxy:
        """Every connection of several users."""
        return self._proxy(AudienceKind.USERS, _names(user_ids, "user_ids"))

    def group(self, name: str) -> ClientProxy:
        """Every connection in a group."""
        return self._proxy(AudienceKind.GROUPS, _names([name], "group"))

    def groups(self, names: Iterable[str]) -> ClientProxy:
        """Every connection in any of several groups."""
        return self._proxy(AudienceKind.GROUPS, _names(names, "groups"))

    def group_except(self, name: str, connection_ids: Iterable[str]) -> ClientProxy:
        """Every connection in a group but the given ones."""
        return self._proxy(AudienceKind.GROUPS, _names([name], "group"), connection_ids)


class CallerClients(HubClients):
    """HubClients plus the caller-relative targets available inside a hub method."""

    __slots__ = ("_connection_id",)

    def __init__(self, sender: MessageSender, connection_id: str) -> None:
        super().__init__(sender)
        self._connection_id = connection_id

    @property
    def caller(self) -> SingleClientProxy:
        """The connection that invoked the hub method."""
        return self.client(self._connection_id)

    @property
    def others(self) -> ClientProxy:
        """Every connection but the caller."""
        return self.all_except([self._connection_id])

    def others_in_group(self, name: str) -> ClientProxy:
        """Every connection in a group but the caller."""
        return self.group_except(name, [self._connection_id])


class GroupManager:
    """Adds and removes connections to and from groups, on whichever process they live."""

    __slots__ = ("_sender",)

    def __init__(self, sender: MessageSender) -> None:
        self._sender = sender

    async def add(self, connection_id: str, group: str) -> None:
        """Add a connection to a group."""
        await self._sender.add_to_group(connection_id, group)

    async def remove(self, connection_id: str, group: str) -> None:
        """Remove a connection from a group."""
        await self._sender.remove_from_group(connection_id, group)


class HubContext:
    """Clients and groups of one hub, usable from any code: a route, a job, a script."""

    __slots__ = ("clients", "groups")

    def __init__(self, sender: MessageSender) -> None:
        self.clients = HubClients(sender)
        self.groups = GroupManager(sender)
