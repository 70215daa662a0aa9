"""The backplane port: publish text payloads, have every subscriber (this process too) get them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Handler = Callable[[str], Awaitable[None]]


class Backplane(ABC):
    """Fans payloads out to every subscribed process, including the publisher's own."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._listening = False

    async def publish(self, payload: str) -> None:
        """Send a payload to every subscriber on every process."""
        await self._publish(payload)

    async def subscribe(self, handler: Handler) -> None:
        """Deliver every payload published from now on to `handler`, in publish order."""
        self._handlers.append(handler)
        if not self._listening:
            await self._start_listening()
            self._listening = True

    async def unsubscribe(self, handler: Handler) -> None:
        """Stop delivering to `handler`."""
        if handler in self._handlers:
            self._handlers.remove(handler)

    async def close(self) -> None:
        """Stop listening and release connections."""
        self._handlers.clear()
        self._listening = False
        await self._close()

    async def _dispatch(self, payload: str) -> None:
        for handler in list(self._handlers):
            try:
                await handler(payload)
            except Exception:
                log.exception("backplane handler failed")

    async def _keep_receiving(
        self,
        receive: Callable[[], Awaitable[None]],
        reconnect: Callable[[], Awaitable[None]],
        lost: str,
        retry_delay: float,
    ) -> None:
        """Run ``receive`` for ever; after a failure wait, ``reconnect`` and go on."""
        while True:
            try:
                await receive()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s; retrying", lost)
                await asyncio.sleep(retry_delay)
                with contextlib.suppress(Exception):
                    await reconnect()

    @abstractmethod
    async def _publish(self, payload: str) -> None:
        """Transport-specific publish."""

    @abstractmethod
    async def _start_listening(self) -> None:
        """Start receiving; return only once payloads published afterwards will arrive."""

    @abstractmethod
    async def _close(self) -> None:
        """Transport-specific shutdown."""
