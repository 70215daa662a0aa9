"""One contract, four backplanes: memory, PostgreSQL, Redis, SQLite outbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from diquis.realtime import (
    ANONYMOUS,
    Backplane,
    BackplaneError,
    ClientResultError,
    Hub,
    HubServer,
    backplane_from_url,
    publisher_context,
)
from diquis.realtime.backplane.memory import MemoryBackplane
from diquis.realtime.backplane.postgres import PostgresBackplane
from diquis.realtime.backplane.redis import RedisBackplane
from diquis.realtime.backplane.sqlite import SqliteOutboxBackplane
from diquis.realtime.connection import HubConnection

KINDS = ["memory", "postgres", "redis", "sqlite"]


@pytest.fixture(params=KINDS)
def backplane_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL on which several backplane instances talk to each other."""
    kind = request.param
    channel = f"t{uuid.uuid4().hex[:10]}"
    if kind == "memory":
        return f"memory://{channel}"
    if kind == "postgres":
        return f"{request.getfixturevalue('postgres_url')}?channel={channel}"
    if kind == "redis":
        return f"{request.getfixturevalue('redis_url')}?channel={channel}"
    return f"sqlite:///{tmp_path}/outbox.db?poll_interval=0.02"


@pytest.fixture
async def make(backplane_url: str) -> AsyncIterator[Callable[[], Backplane]]:
    """Create backplane instances on the URL; all are closed afterwards."""
    made: list[Backplane] = []

    def create() -> Backplane:
        backplane = backplane_from_url(backplane_url)
        made.append(backplane)
        return backplane

    yield create
    for backplane in made:
        await backplane.close()


class Inbox:
    """Collects payloads and waits for them."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._changed = asyncio.Event()

    async def __call__(self, payload: str) -> None:
        self.items.append(payload)
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[str]:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


async def test_every_subscriber_including_the_publisher_gets_payloads_in_order(make):
    a, b = make(), make()
    inbox_a, inbox_b = Inbox(), Inbox()
    await a.subscribe(inbox_a)
    await b.subscribe(inbox_b)
    sent = [f'{{"n":{i},"text":"héllo ✓"}}' for i in range(20)]
    for payload in sent[:10]:
        await a.publish(payload)
    for payload in sent[10:]:
        await b.publish(payload)
    assert await inbox_a.wait_for(20) == sent
    assert await inbox_b.wait_for(20) == sent


async def test_a_publish_only_instance_reaches_subscribers(make):
    listener, publisher = make(), make()
    inbox = Inbox()
    await listener.subscribe(inbox)
    await publisher.publish('{"from":"worker"}')
    assert await inbox.wait_for(1) == ['{"from":"worker"}']


async def test_payloads_over_the_notify_limit_are_delivered(make):
    a, b = make(), make()
    inbox = Inbox()
    await b.subscribe(inbox)
    big = '{"blob":"' + "é" * 20_000 + '"}'
    await a.publish(big)
    await a.publish('{"small":1}')
    assert await inbox.wait_for(2) == [big, '{"small":1}']


async def test_unsubscribed_handlers_get_nothing_more(make):
    a = make()
    kept, dropped = Inbox(), Inbox()
    await a.subscribe(kept)
    await a.subscribe(dropped)
    await a.unsubscribe(dropped)
    await a.publish('{"x":1}')
    await kept.wait_for(1)
    assert dropped.items == []


def test_factory_builds_each_kind_from_its_url(tmp_path):
    assert isinstance(backplane_from_url("memory://"), MemoryBackplane)
    pg = backplane_from_url("postgresql://u@h/db?channel=hub&sslmode=disable")
    assert isinstance(pg, PostgresBackplane)
    assert pg.channel == "hub"
    assert isinstance(backplane_from_url("redis://127.0.0.1:6379/0"), RedisBackplane)
    sqlite = backplane_from_url(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(sqlite, SqliteOutboxBackplane)
    assert sqlite.path == f"{tmp_path}/x.db"
    relative = backplane_from_url("sqlite:///data/outbox.db")
    assert isinstance(relative, SqliteOutboxBackplane)
    assert relative.path == "data/outbox.db"
    with pytest.raises(BackplaneError, match="scheme"):
        backplane_from_url("kafka://x")
    with pytest.raises(BackplaneError, match="sqlite"):
        backplane_from_url("sqlite://")


class _AskedHub(Hub):
    pass


async def _open_connection(server: HubServer) -> HubConnection:
    """A connection on `server` that completed its handshake (no socket: frames stay queued)."""
    connection = server.new_connection(ANONYMOUS)
    await connection.receive_data(b'{"protocol":"json","version":1}\x1e', server.now())
    connection.take_outgoing(server.now())  # the handshake response
    return connection


async def _answer(server: HubServer, connection: HubConnection, reply: Callable[[dict], dict]):
    """Wait for the Invocation the client was sent, answer it with a Completion."""
    async with asyncio.timeout(5):
        while not connection.has_outgoing():
            await asyncio.sleep(0.01)
    frame = connection.take_outgoing(server.now())
    invocation = json.loads(frame.split(b"\x1e")[0])
    completion = {"type": 3, "invocationId": invocation["invocationId"], **reply(invocation)}
    await connection.receive_data(json.dumps(completion).encode() + b"\x1e", server.now())
    return invocation


async def test_client_results_reach_a_connection_on_another_process(backplane_url: str):
    holder = HubServer(_AskedHub, name="asked", backplane=backplane_from_url(backplane_url))
    asker = HubServer(_AskedHub, name="asked", backplane=backplane_from_url(backplane_url))
    worker_backplane = backplane_from_url(backplane_url)
    worker = publisher_context(worker_backplane, "asked")
    await holder.start()
    await asker.start()
    try:
        connection = await _open_connection(holder)
        for context in (asker.context, worker):
            call = asyncio.create_task(
                context.clients.client(connection.id).invoke("GetLocation", "x", timeout=5)
            )
            invocation = await _answer(holder, connection, lambda m: {"result": {"city": "Lima"}})
            assert invocation["target"] == "GetLocation"
            assert invocation["arguments"] == ["x"]
            assert await call == {"city": "Lima"}
        call = asyncio.create_task(asker.context.clients.client(connection.id).invoke("Broken"))
        await _answer(holder, connection, lambda m: {"error": "no location"})
        with pytest.raises(ClientResultError, match="no location"):
            await call
        # The connection closes before it answers: ClientResultError, not a timeout.
        call = asyncio.create_task(asker.context.clients.client(connection.id).invoke("Slow"))
        async with asyncio.timeout(5):
            while not connection.has_outgoing():
                await asyncio.sleep(0.01)
        await connection.close()
        with pytest.raises(ClientResultError, match="disconnected"):
            await asyncio.wait_for(call, 5)
        # Nobody holds this connection: the caller times out.
        with pytest.raises(TimeoutError):
            await asker.context.clients.client("nobody").invoke("X", timeout=0.3)
    finally:
        await asker.stop()
        await holder.stop()
        await worker_backplane.close()
