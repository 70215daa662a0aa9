"""Message senders: through the backplane to every process, or only publishing (no HTTP)."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from .audience import Audience, AudienceKind
from .backplane.base import Backplane
from .clients import HubContext
from .connection import HubConnection
from .envelope import (
    GroupEnvelope,
    InvokeEnvelope,
    ResultEnvelope,
    SendEnvelope,
    decode,
    encode_group,
    encode_invoke,
    encode_result,
    encode_send,
)
from .errors import BackplaneError, ClientResultError, HubError
from .protocol.base import HubProtocol
from .protocol.messages import InvocationMessage
from .registry import LocalConnections

log = logging.getLogger(__name__)

DISCONNECTED = "Connection disconnected before the client returned a result."

# The connection whose hub method is running in this task, if any: asking that same client
# for a result would wait on the very receive loop the method is blocking.
current_connection: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "diquis_current_connection", default=None
)


def _encode_send(hub: str, audience: Audience, method: str, arguments: Sequence[Any]) -> str:
    try:
        return encode_send(hub, audience, method, arguments)
    except (TypeError, ValueError, OverflowError) as exc:
        raise HubError(f"arguments of '{method}' cannot be serialized: {exc}") from exc


class _Calls:
    """Client-result calls this process made and is waiting on, by call id."""

    def __init__(self) -> None:
        self.instance = secrets.token_hex(8)
        self._ids = itertools.count(1)
        self._futures: dict[str, asyncio.Future[Any]] = {}

    def open(self) -> tuple[str, asyncio.Future[Any]]:
        call_id = f"{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[call_id] = future
        return call_id, future

    def settle(self, call_id: str, result: Any, error: str | None) -> None:
        future = self._futures.pop(call_id, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(ClientResultError(error))
        else:
            future.set_result(result)

    def forget(self, call_id: str) -> None:
        self._futures.pop(call_id, None)

    async def wait(self, call_id: str, future: asyncio.Future[Any], timeout: float) -> Any:
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self.forget(call_id)


class BackplanePublisher:
    """A sender for a process with no connections (a job worker): it only publishes."""

    def __init__(self, backplane: Backplane, hub_name: str) -> None:
        self.backplane = backplane
        self.hub_name = hub_name
        self._calls = _Calls()
        self._listening = False

    async def send(self, audience: Audience, method: str, arguments: Sequence[Any]) -> None:
        """Publish a send for every process to deliver."""
        await self.backplane.publish(_encode_send(self.hub_name, audience, method, arguments))

    async def add_to_group(self, connection_id: str, group: str) -> None:
        """Publish a group add for the process holding the connection."""
        await self.backplane.publish(encode_group(self.hub_name, connection_id, group, True))

    async def remove_from_group(self, connection_id: str, group: str) -> None:
        """Publish a group removal for the process holding the connection."""
        await self.backplane.publish(encode_group(self.hub_name, connection_id, group, False))

    async def invoke(
        self, connection_id: str, method: str, arguments: Sequence[Any], timeout: float
    ) -> Any:
        """Ask one connection, wherever it lives, for a result."""
        if not self._listening:
            await self.backplane.subscribe(self._on_result)
            self._listening = True
        call_id, future = self._calls.open()
        envelope = InvokeEnvelope(
            self.hub_name, connection_id, method, tuple(arguments), self._calls.instance, call_id
        )
        try:
            payload = encode_invoke(envelope)
        except (TypeError, ValueError, OverflowError) as exc:
            self._calls.forget(call_id)
            raise HubError(f"arguments of '{method}' cannot be serialized: {exc}") from exc
        await self.backplane.publish(payload)
        return await self._calls.wait(call_id, future, timeout)

    async def _on_result(self, payload: str) -> None:
        try:
            envelope = decode(payload)
        except BackplaneError:
            return
        self._take_result(envelope)

    def _take_result(self, envelope: Any) -> bool:
        if (
            isinstance(envelope, ResultEnvelope)
            and envelope.hub == self.hub_name
            and envelope.reply_to == self._calls.instance
        ):
            self._calls.settle(envelope.call_id, envelope.result, envelope.error)
            return True
        return False


def publisher_context(backplane: Backplane, hub_name: str) -> HubContext:
    """A hub context for a process without HTTP: everything goes through `backplane`."""
    return HubContext(BackplanePublisher(backplane, hub_name))


class _Asked:
    """A client-result invocation sent to a local connection, awaiting its Completion."""

    __slots__ = ("call_id", "connection_id", "reply_to")

    def __init__(self, connection_id: str, reply_to: str, call_id: str) -> None:
        self.connection_id = connection_id
        self.reply_to = reply_to
        self.call_id = call_id


class HubLifetime(BackplanePublisher):
    """The sender of a web process: local shortcuts, the backplane for everything else."""

    def __init__(
        self,
        backplane: Backplane,
        hub_name: str,
        connections: LocalConnections,
        protocols: Sequence[HubProtocol],
    ) -> None:
        super().__init__(backplane, hub_name)
        self.connections = connections
        self._protocols = protocols
        self._listening = True  # the server subscribes on_backplane, which takes results too
        self._asked: dict[str, _Asked] = {}
        self._asked_ids = itertools.count(1)

    async def send(self, audience: Audience, method: str, arguments: Sequence[Any]) -> None:
        """Deliver directly when every addressed connection is here; else publish."""
        if audience.kind is AudienceKind.CONNECTIONS and all(
            name in self.connections.by_id for name in audience.names
        ):
            _encode_send(self.hub_name, audience, method, arguments)
            self.deliver(audience, method, tuple(arguments))
            return
        await super().send(audience, method, arguments)

    async def add_to_group(self, connection_id: str, group: str) -> None:
        """Join here when the connection is here; else ask its process via the backplane."""
        if not self.connections.join(connection_id, group):
            await super().add_to_group(connection_id, group)

    async def remove_from_group(self, connection_id: str, group: str) -> None:
        """Leave here when the connection is here; else ask its process via the backplane."""
        if not self.connections.leave(connection_id, group):
            await super().remove_from_group(connection_id, group)

    async def invoke(
        self, connection_id: str, method: str, arguments: Sequence[Any], timeout: float
    ) -> Any:
        """Ask one connection for a result: directly when it is here, else via the backplane."""
        if current_connection.get() == connection_id:
            raise ClientResultError(
                "A hub method cannot wait for a result from its own caller: the caller's "
                "messages are not read until the method returns."
            )
        connection = self.connections.by_id.get(connection_id)
        if connection is None:
            return await super().invoke(connection_id, method, arguments, timeout)
        call_id, future = self._calls.open()
        try:
            self._ask(connection, method, tuple(arguments), self._calls.instance, call_id)
        except BaseException:
            self._calls.forget(call_id)
            raise
        return await self._calls.wait(call_id, future, timeout)

    def _ask(
        self,
        connection: HubConnection,
        method: str,
        arguments: tuple[Any, ...],
        reply_to: str,
        call_id: str,
    ) -> None:
        if not connection.is_open:
            raise ClientResultError(DISCONNECTED)
        invocation_id = f"r{next(self._asked_ids)}"
        message = InvocationMessage(method, arguments, invocation_id)
        try:
            frame = connection.session.write(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise HubError(f"arguments of '{method}' cannot be serialized: {exc}") from exc
        self._asked[invocation_id] = _Asked(connection.id, reply_to, call_id)
        connection.enqueue(frame, tracked=True)

    def take_completion(
        self, connection: HubConnection, invocation_id: str, result: Any, error: str | None
    ) -> bool:
        """A Completion from a client: True when it answers one of our client-result calls."""
        asked = self._asked.get(invocation_id)
        if asked is None or asked.connection_id != connection.id:
            return False
        del self._asked[invocation_id]
        self._answer(asked, result, error)
        return True

    def connection_gone(self, connection: HubConnection) -> None:
        """Fail every client-result call still waiting on a closed connection."""
        if not self._asked:
            return
        for invocation_id, asked in list(self._asked.items()):
            if asked.connection_id == connection.id:
                del self._asked[invocation_id]
                self._answer(asked, None, DISCONNECTED)

    def _answer(self, asked: _Asked, result: Any, error: str | None) -> None:
        if asked.reply_to == self._calls.instance:
            self._calls.settle(asked.call_id, result, error)
            return
        envelope = ResultEnvelope(self.hub_name, asked.reply_to, asked.call_id, result, error)
        try:
            payload = encode_result(envelope)
        except (TypeError, ValueError, OverflowError):
            payload = encode_result(
                ResultEnvelope(
                    self.hub_name, asked.reply_to, asked.call_id, None, "Unserializable result."
                )
            )
        task = asyncio.get_running_loop().create_task(self.backplane.publish(payload))
        task.add_done_callback(_log_failure)

    def deliver(self, audience: Audience, method: str, arguments: tuple[Any, ...]) -> int:
        """Queue the invocation on every local connection of `audience`; return how many."""
        targets = self.connections.select(audience)
        frames: dict[str, bytes] = {}
        count = 0
        message = InvocationMessage(target=method, arguments=arguments)
        for connection in targets:
            protocol = connection.session.protocol
            if protocol is None or connection.closed:
                continue
            frame = frames.get(protocol.name)
            if frame is None:
                frame = frames[protocol.name] = protocol.write_message(message)
            connection.enqueue(frame, True)
            count += 1
        return count

    async def on_backplane(self, payload: str) -> None:
        """Apply a payload from any process (this one included)."""
        try:
            envelope = decode(payload)
        except BackplaneError:
            log.warning("ignoring a malformed backplane payload")
            return
        if envelope.hub != self.hub_name:
            return
        if isinstance(envelope, SendEnvelope):
            self.deliver(envelope.audience, envelope.method, envelope.arguments)
        elif isinstance(envelope, GroupEnvelope):
            if envelope.add:
                self.connections.join(envelope.connection_id, envelope.group)
            else:
                self.connections.leave(envelope.connection_id, envelope.group)
        elif isinstance(envelope, InvokeEnvelope):
            connection = self.connections.by_id.get(envelope.connection_id)
            if connection is None or envelope.reply_to == self._calls.instance:
                return  # not ours to answer (a local call never travels the backplane)
            asked = _Asked(connection.id, envelope.reply_to, envelope.call_id)
            try:
                self._ask(
                    connection,
                    envelope.method,
                    envelope.arguments,
                    envelope.reply_to,
                    envelope.call_id,
                )
            except (ClientResultError, HubError) as exc:
                self._answer(asked, None, str(exc))
        else:
            self._take_result(envelope)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("publishing a client result failed", exc_info=task.exception())
