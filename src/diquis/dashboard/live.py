"""The live feed: one reader of the engine's cross-process state changes per event loop,
fanned out to every open dashboard page as server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable

from ..jobs import StateChange

log = logging.getLogger(__name__)

Source = Callable[[], AsyncIterator[StateChange]]


class LiveFeed:
    """Fans one state-change source out to subscribers; reads only while someone listens."""

    def __init__(self, source: Source, *, queue_size: int = 1000) -> None:
        self._source = source
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[StateChange | None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._subscribers)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[StateChange | None]]:
        """A queue receiving every change from now on (None: some were dropped)."""
        queue: asyncio.Queue[StateChange | None] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._pump())
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
            if not self._subscribers and self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
                self._task = None

    async def _pump(self) -> None:
        while self._subscribers:
            try:
                async for change in self._source():
                    for queue in list(self._subscribers):
                        try:
                            queue.put_nowait(change)
                        except asyncio.QueueFull:
                            # a stalled browser: tell it to resync instead of blocking everyone
                            with contextlib.suppress(asyncio.QueueEmpty):
                                queue.get_nowait()
                            queue.put_nowait(None)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dashboard live feed failed; reconnecting in 1s")
                await asyncio.sleep(1.0)


async def sse_stream(feed: LiveFeed, keepalive: float = 15.0) -> AsyncIterator[bytes]:
    """``text/event-stream`` bytes: ``state`` events, ``resync`` after drops, pings."""
    async with feed.subscribe() as queue:
        yield b"retry: 2000\n: connected\n\n"
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield b": ping\n\n"
                continue
            if change is None:
                yield b"event: resync\ndata: {}\n\n"
                continue
            data = json.dumps({"job_id": change.job_id, "state": change.state.value})
            yield f"event: state\ndata: {data}\n\n".encode()
