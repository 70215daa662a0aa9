"""Redis pub/sub backplane (redis.asyncio)."""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.client import PubSub

from .base import Backplane
from .buffer import PublishBuffer


class RedisBackplane(Backplane):
    """Publishes on one Redis channel; every subscribed process receives.

    While Redis is away, what this process publishes is held (up to 1,000 messages, 60 s)
    and sent in order once it is back: see :class:`PublishBuffer`.
    """

    def __init__(
        self, url: str, channel: str = "diquis:realtime", retry_delay: float = 1.0
    ) -> None:
        super().__init__()
        self._url = url
        self.channel = channel
        self._retry_delay = retry_delay
        self._redis: aioredis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self.buffer = PublishBuffer(
            self._send,
            errors=(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError),
            retry_delay=retry_delay,
        )

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self._url)
        return self._redis

    async def _publish(self, payload: str) -> None:
        await self.buffer.publish(payload)

    async def _send(self, payload: str) -> int:
        receivers: int = await self._client().publish(self.channel, payload.encode())
        return receivers

    async def _subscribe(self) -> PubSub:
        pubsub = self._client().pubsub()
        await pubsub.subscribe(self.channel)
        # Wait for the server's confirmation so later publishes are sure to reach us.
        while True:
            message = await pubsub.get_message(timeout=5.0)
            if message is not None and message["type"] == "subscribe":
                return pubsub

    async def _start_listening(self) -> None:
        self._pubsub = await self._subscribe()
        self._task = asyncio.create_task(self._listen(), name="diquis-redis-backplane")

    async def _listen(self) -> None:
        async def receive() -> None:
            assert self._pubsub is not None
            async for message in self._pubsub.listen():
                if message["type"] == "message":
                    data = message["data"]
                    await self._dispatch(data.decode() if isinstance(data, bytes) else data)

        async def reconnect() -> None:
            self._pubsub = await self._subscribe()

        await self._keep_receiving(
            receive, reconnect, "redis backplane lost its subscription", self._retry_delay
        )

    async def _close(self) -> None:
        await self.buffer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
