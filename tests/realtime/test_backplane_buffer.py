"""What a process publishes while Redis is away is held and sent once it is back."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from diquis.realtime.backplane.buffer import PublishBuffer
from diquis.realtime.backplane.redis import RedisBackplane
from tests.conftest import need
from tests.support import processes
from tests.support.net import free_port, wait_for_port


class _Flaky:
    """A send that fails while ``down`` is set."""

    def __init__(self) -> None:
        self.down = False
        self.receivers = 1
        self.sent: list[str] = []

    async def __call__(self, payload: str) -> int:
        if self.down:
            raise ConnectionError("server away")
        if self.receivers:
            self.sent.append(payload)
        return self.receivers


async def _until(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_held_messages_go_out_in_order_once_the_server_is_back() -> None:
    send = _Flaky()
    buffer = PublishBuffer(send, errors=(ConnectionError,), retry_delay=0.01)
    await buffer.publish("a")
    send.down = True
    for payload in ("b", "c", "d"):
        await buffer.publish(payload)
    assert buffer.held == 3 and send.sent == ["a"]
    send.down, send.receivers = False, 0  # back, but nobody subscribed again yet
    await asyncio.sleep(0.05)
    assert buffer.held == 3  # kept: sent now they would reach nobody
    send.receivers = 1
    await buffer.publish("e")  # behind the held ones, never ahead
    await _until(lambda: buffer.held == 0)
    assert send.sent == ["a", "b", "c", "d", "e"]
    await buffer.close()


async def test_at_most_max_messages_and_max_age_are_held() -> None:
    now = [0.0]
    send = _Flaky()
    send.down = True
    buffer = PublishBuffer(
        send, errors=(ConnectionError,), max_messages=3, max_age=60, retry_delay=0.01,
        clock=lambda: now[0],
    )  # fmt: skip
    for i in range(5):
        await buffer.publish(str(i))
    assert buffer.held == 3 and buffer.dropped == 2  # the oldest went
    now[0] = 61.0
    await buffer.publish("late")
    await asyncio.sleep(0.05)
    assert buffer.held == 1 and buffer.dropped == 5  # 60 s passed: only "late" is kept
    send.down = False
    await _until(lambda: buffer.held == 0)
    assert send.sent == ["late"]
    await buffer.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, object]]:
    """A redis-server of this test's own, which the test may stop and start again."""
    binary = shutil.which("redis-server")
    need(binary is not None, "redis-server is not installed")
    assert binary is not None
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(
            processes.spawn(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(tmp_path)],
                log=Path(os.devnull),
            )
        )  # fmt: skip
        wait_for_port(port)
        time.sleep(0.05)
        # another process may have taken the port between free_port() and the bind
        assert procs[-1].poll() is None, f"redis-server could not listen on {port}"

    def stop() -> None:
        for proc in procs:
            processes.kill(proc, timeout=10)

    start()
    yield port, (start, stop)
    stop()


async def test_redis_restart_publishes_held_messages_to_connected_subscribers(
    private_redis: tuple[int, tuple[object, object]],
) -> None:
    port, (start, stop) = private_redis
    url = f"redis://127.0.0.1:{port}/0"
    publisher = RedisBackplane(url, retry_delay=0.1)
    subscriber = RedisBackplane(url, retry_delay=0.1)
    received: list[str] = []

    async def record(payload: str) -> None:
        received.append(payload)

    await subscriber.subscribe(record)
    try:
        await publisher.publish("before")
        await _until(lambda: received == ["before"])
        stop()  # type: ignore[operator]
        for i in range(20):
            await publisher.publish(f"while-down-{i}")  # never raises: held
        assert publisher.buffer.held == 20
        await asyncio.sleep(0.3)
        start()  # type: ignore[operator]
        await _until(lambda: publisher.buffer.held == 0, timeout=15)
        await publisher.publish("after")
        await _until(lambda: len(received) == 22, timeout=15)
        assert received == ["before", *(f"while-down-{i}" for i in range(20)), "after"]
    finally:
        await publisher.close()
        await subscriber.close()
