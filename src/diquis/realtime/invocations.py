"""Runs client invocations against a hub class and answers with Completion/StreamItem."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from .connection import HubConnection
from .dispatch import HubMethod, HubMethods, call, error_text, stream
from .errors import HubError
from .hub import Hub
from .lifetime import current_connection
from .protocol.messages import (
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    PingMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)
from .streams import ClientStream

log = logging.getLogger(__name__)

HubFactory = Callable[[HubConnection], Hub]
CompletionSink = Callable[[HubConnection, str, Any, "str | None"], bool]


class Invoker:
    """Dispatches one connection's hub messages to a hub class."""

    def __init__(
        self,
        methods: HubMethods,
        make_hub: HubFactory,
        detailed_errors: bool,
        completions: CompletionSink | None = None,
    ) -> None:
        self.methods = methods
        self._make_hub = make_hub
        self._detailed = detailed_errors
        self._completions = completions

    async def handle(self, connection: HubConnection, message: HubMessage) -> None:
        """React to one message from a client."""
        if isinstance(message, InvocationMessage):
            prepared = self._prepare(connection, message, streaming=False)
            if prepared is None:
                return
            if message.stream_ids:
                # The method reads streams this same receive loop feeds: run it aside.
                self._run_aside(connection, self._invoke(connection, message, *prepared))
            else:
                await self._invoke(connection, message, *prepared)
        elif isinstance(message, StreamItemMessage):
            upload = connection.uploads.get(message.invocation_id)
            if upload is not None:
                await upload.put(message.item)
        elif isinstance(message, CompletionMessage):
            sink = self._completions
            if sink is not None and sink(
                connection, message.invocation_id, message.result, message.error
            ):
                return
            upload = connection.uploads.pop(message.invocation_id, None)
            if upload is not None:
                upload.complete(message.error)
        elif isinstance(message, StreamInvocationMessage):
            self._start_stream(connection, message)
        elif isinstance(message, CancelInvocationMessage):
            task = connection.streams.pop(message.invocation_id, None)
            if task is not None:
                task.cancel()
        elif isinstance(message, CloseMessage):
            await connection.close()
        elif isinstance(message, PingMessage):
            return
        else:
            log.debug("ignoring %s from %s", type(message).__name__, connection.id)

    def _run_aside(self, connection: HubConnection, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        connection.tasks.add(task)
        task.add_done_callback(connection.tasks.discard)

    def _fail(self, connection: HubConnection, invocation_id: str | None, error: str) -> None:
        if invocation_id is None:
            log.info("non-blocking invocation failed on %s: %s", connection.id, error)
            return
        connection.send_message(CompletionMessage.with_error(invocation_id, error))

    def _resolve(
        self, connection: HubConnection, target: str, invocation_id: str | None, streaming: bool
    ) -> HubMethod | None:
        method = self.methods.find(target)
        if method is None:
            self._fail(
                connection, invocation_id, f"Failed to invoke '{target}': method does not exist."
            )
            return None
        if method.streaming and not streaming:
            self._fail(
                connection,
                invocation_id,
                f"The client attempted to invoke the streaming '{target}' method with a "
                "non-streaming invocation.",
            )
            return None
        if streaming and not method.streaming:
            self._fail(
                connection,
                invocation_id,
                f"The client attempted to invoke the non-streaming '{target}' method with a "
                "streaming invocation.",
            )
            return None
        return method

    def _prepare(
        self,
        connection: HubConnection,
        message: InvocationMessage | StreamInvocationMessage,
        streaming: bool,
    ) -> tuple[HubMethod, inspect.BoundArguments] | None:
        """The method and its bound arguments, or None after answering with an error."""
        method = self._resolve(connection, message.target, message.invocation_id, streaming)
        if method is None:
            return None
        streams: list[ClientStream] = []
        for stream_id in message.stream_ids:
            if stream_id in connection.uploads:
                self._fail(connection, message.invocation_id, f"Stream id '{stream_id}' is in use.")
                return None
            streams.append(ClientStream())
        bound = method.bind(self._make_hub(connection), message.arguments, streams)
        if isinstance(bound, str):
            self._fail(connection, message.invocation_id, bound)
            return None
        for stream_id, upload in zip(message.stream_ids, streams, strict=True):
            connection.uploads[stream_id] = upload
        return method, bound

    @staticmethod
    def _release_uploads(
        connection: HubConnection, message: InvocationMessage | StreamInvocationMessage
    ) -> None:
        for stream_id in message.stream_ids:
            upload = connection.uploads.pop(stream_id, None)
            if upload is not None:
                upload.close()

    async def _invoke(
        self,
        connection: HubConnection,
        message: InvocationMessage,
        method: HubMethod,
        bound: inspect.BoundArguments,
    ) -> None:
        invocation_id = message.invocation_id
        token = current_connection.set(connection.id)
        try:
            result = await call(method, bound)
        except Exception as exc:
            if not isinstance(exc, HubError):
                log.exception("hub method %s failed", method.name)
            self._fail(connection, invocation_id, error_text(message.target, exc, self._detailed))
            return
        finally:
            current_connection.reset(token)
            self._release_uploads(connection, message)
        if invocation_id is None or not connection.is_open:
            return
        try:
            frame = connection.session.write(CompletionMessage.with_result(invocation_id, result))
        except (TypeError, ValueError):
            log.exception("result of hub method %s is not serializable", method.name)
            self._fail(
                connection,
                invocation_id,
                f"The result of '{message.target}' could not be serialized.",
            )
            return
        connection.enqueue(frame, tracked=True)

    def _start_stream(self, connection: HubConnection, message: StreamInvocationMessage) -> None:
        invocation_id = message.invocation_id
        if invocation_id in connection.streams:
            self._fail(connection, invocation_id, "An invocation with this id is already running.")
            return
        prepared = self._prepare(connection, message, streaming=True)
        if prepared is None:
            return
        method, bound = prepared
        connection.streams[invocation_id] = asyncio.get_running_loop().create_task(
            self._run_stream(connection, message, method, bound)
        )

    async def _run_stream(
        self,
        connection: HubConnection,
        message: StreamInvocationMessage,
        method: HubMethod,
        bound: inspect.BoundArguments,
    ) -> None:
        invocation_id = message.invocation_id
        target = message.target
        current_connection.set(connection.id)  # this task's own context
        items = stream(method, bound)
        try:
            async for item in items:
                connection.send_message(StreamItemMessage(invocation_id, item))
                # Let the transport write before producing more.
                await asyncio.sleep(0)
            connection.send_message(CompletionMessage(invocation_id))
        except asyncio.CancelledError:
            # The client cancelled, or the connection closed: no completion is owed.
            pass
        except Exception as exc:
            if not isinstance(exc, HubError):
                log.exception("hub stream %s failed", method.name)
            self._fail(connection, invocation_id, error_text(target, exc, self._detailed))
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.debug("closing stream %s failed", method.name, exc_info=True)
            connection.streams.pop(invocation_id, None)
            self._release_uploads(connection, message)
