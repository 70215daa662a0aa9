"""The live feed: one reader of the engine's state changes fanned out to every open page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from diquis.dashboard import LiveFeed
from diquis.dashboard.live import sse_stream
from diquis.jobs import JobEngine, State, StateChange


async def test_one_source_fans_out_and_stops_when_nobody_listens() -> None:
    opened: list[int] = []
    feed_queue: asyncio.Queue[StateChange] = asyncio.Queue()

    async def source() -> AsyncIterator[StateChange]:
        opened.append(1)
        while True:
            yield await feed_queue.get()

    feed = LiveFeed(source)
    async with feed.subscribe() as first, feed.subscribe() as second:
        assert feed.subscribers == 2
        await feed_queue.put(StateChange(7, State.SUCCEEDED))
        assert await asyncio.wait_for(first.get(), 2) == StateChange(7, State.SUCCEEDED)
        assert await asyncio.wait_for(second.get(), 2) == StateChange(7, State.SUCCEEDED)
    assert feed.subscribers == 0
    assert opened == [1]  # one reader for both pages


async def test_a_stalled_subscriber_is_told_to_resync() -> None:
    async def source() -> AsyncIterator[StateChange]:
        for n in range(5):
            yield StateChange(n, State.ENQUEUED)
        await asyncio.Event().wait()

    feed = LiveFeed(source, queue_size=2)
    async with feed.subscribe() as queue:
        await asyncio.sleep(0.05)
        seen = [queue.get_nowait() for _ in range(queue.qsize())]
    assert None in seen  # the drop is signalled, the pump never blocked


async def test_sse_stream_carries_changes_from_the_engine(tmp_path: Path) -> None:
    engine = JobEngine(f"sqlite:///{tmp_path}/jobs.db")

    @engine.job(name="demo.noop")
    def noop() -> None:
        return None

    feed = LiveFeed(lambda: engine.state_changes(poll_interval=0.01))
    stream = sse_stream(feed, keepalive=5)
    try:
        assert await anext(stream) == b"retry: 2000\n: connected\n\n"
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.1)  # the reader has taken its position in the history
        job_id = await engine.aenqueue(noop)
        event = await asyncio.wait_for(pending, 5)
        assert event == (
            f'event: state\ndata: {{"job_id": {job_id}, "state": "Enqueued"}}\n\n'.encode()
        )
    finally:
        await stream.aclose()
        engine.close()
    assert feed.subscribers == 0
