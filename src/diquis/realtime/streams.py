"""Client-to-server streams: what a hub method's AsyncIterator argument reads from."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from .errors import HubError


class ClientStreamError(HubError):
    """The client ended its stream with an error, or the connection closed first."""


class ClientStream(AsyncIterator[Any]):
    """The items a client sends with StreamItem messages, until its Completion."""

    __slots__ = ("_capacity", "_closed", "_done", "_error", "_items", "_readable", "_writable")

    def __init__(self, capacity: int = 10) -> None:
        self._items: deque[Any] = deque()
        self._capacity = capacity
        self._done = False
        self._closed = False
        self._error: str | None = None
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()

    def __aiter__(self) -> ClientStream:
        return self

    async def __anext__(self) -> Any:
        while not self._items:
            if self._done:
                if self._error is not None:
                    raise ClientStreamError(self._error)
                raise StopAsyncIteration
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        self._writable.set()
        return item

    async def put(self, item: Any) -> None:
        """An item arrived; waits while the reader is `capacity` items behind (backpressure)."""
        while len(self._items) >= self._capacity and not self._closed:
            self._writable.clear()
            await self._writable.wait()
        if self._closed or self._done:
            return
        self._items.append(item)
        self._readable.set()

    def complete(self, error: str | None = None) -> None:
        """The stream ended (with an error, if given); items already received are still read."""
        if self._done:
            return
        self._done = True
        self._error = error
        self._readable.set()

    def close(self) -> None:
        """The hub method is done with the stream: drop what is left, release a waiting put."""
        self._closed = True
        self._done = True
        self._items.clear()
        self._writable.set()
        self._readable.set()
