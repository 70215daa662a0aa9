"""Hold what a process publishes while its backplane server is away, and send it on return."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PublishBuffer:
    """Publishes through ``send``; while that fails, keeps payloads in order and retries.

    At most ``max_messages`` payloads are kept, none older than ``max_age`` seconds: past
    that the oldest are dropped with one warning (a notification is still in its user's
    inbox; only the live push is lost). Once the server answers again, the kept payloads
    go out first, in publish order, then new ones.

    ``send`` may return how many subscribers got the payload (Redis PUBLISH does). A kept
    payload that reached nobody stays kept: right after a restart the server is back
    before the other processes have subscribed again, and a pub/sub message sent then
    would be lost.
    """

    def __init__(
        self,
        send: Callable[[str], Awaitable[int | None]],
        *,
        errors: tuple[type[BaseException], ...],
        max_messages: int = 1000,
        max_age: float = 60.0,
        retry_delay: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._errors = errors
        self.max_messages = max_messages
        self.max_age = max_age
        self.retry_delay = retry_delay
        self._clock = clock
        self._held: collections.deque[tuple[float, str]] = collections.deque()
        self._flusher: asyncio.Task[None] | None = None
        self.dropped = 0

    @property
    def held(self) -> int:
        """How many payloads wait for the server."""
        return len(self._held)

    async def publish(self, payload: str) -> None:
        """Send now, or keep it for later if the server is away (or others already wait)."""
        if not self._held:
            try:
                await self._send(payload)
                return
            except self._errors as exc:
                log.warning("backplane unreachable (%s); holding messages", type(exc).__name__)
        self._hold(payload)

    def _hold(self, payload: str) -> None:
        self._held.append((self._clock(), payload))
        while len(self._held) > self.max_messages:
            self._held.popleft()
            self._drop(1)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="diquis-backplane-buffer")

    def _drop(self, count: int) -> None:
        if self.dropped == 0 or count > 1:
            log.warning(
                "dropped %d held backplane message(s) (over %d kept or %gs old); their "
                "notifications stay in the inbox", count, self.max_messages, self.max_age,
            )  # fmt: skip
        self.dropped += count

    def _expire(self) -> None:
        cutoff = self._clock() - self.max_age
        expired = 0
        while self._held and self._held[0][0] < cutoff:
            self._held.popleft()
            expired += 1
        if expired:
            self._drop(expired)

    async def _flush(self) -> None:
        while self._held:
            await asyncio.sleep(self.retry_delay)
            self._expire()
            while self._held:
                try:
                    receivers = await self._send(self._held[0][1])
                except self._errors:
                    break
                if receivers == 0:
                    break  # back, but nobody has subscribed again yet
                self._held.popleft()
        log.info("backplane reachable again; held messages sent")

    async def close(self) -> None:
        """Stop retrying (what is still held is dropped)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
            self._flusher = None
