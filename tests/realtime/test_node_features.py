"""The official client (Node) against the rest of the protocol: MessagePack, client results,
client-to-server streams, token expiry, stateful reconnect, connection caps."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from tests.realtime.conftest import ServerProcess, make_token
from tests.support.net import free_port

TRANSPORTS = ["WebSockets", "ServerSentEvents", "LongPolling"]
BINARY_TRANSPORTS = ["WebSockets", "LongPolling"]


@pytest.mark.parametrize("transport", BINARY_TRANSPORTS)
def test_messagepack_types_both_ways(hub_server: ServerProcess, node, transport: str):
    run = node(
        "messagepack",
        {
            "url": hub_server.url,
            "token": make_token("alice"),
            "transport": transport,
            "protocol": "messagepack",
        },
    )
    assert run.read()["ready"] is True
    assert httpx.post(f"{hub_server.base}/api/typed").status_code == 200
    out = run.read()
    assert run.finish() == 0
    assert out["values"] == [1, -2, 2**40, 1.5, "héllo", None, True, {"a": [1, {"b": "c"}]}]
    assert out["bytes"] == [0, 1, 2, 255]
    assert out["bytesIsUint8Array"] is True
    assert out["date"] == "2026-01-02T03:04:05.250Z"
    assert out["add"] == 5.5
    assert out["whoami"] == "alice"
    assert out["stream"] == [0, 1, 2]
    assert out["refuse"] == {"error": "You may not do that."}
    # A broadcast from the server: bin, timestamp, a 64-bit int, a float, nil.
    assert out["typed"] == [[0, 1, 255], "2026-01-02T03:04:05.000Z", 2**40, 1.25, None]


def test_messagepack_is_not_offered_over_server_sent_events(hub_server: ServerProcess, node):
    run = node(
        "badToken",
        {
            "url": hub_server.url,
            "token": make_token("alice"),
            "transport": "ServerSentEvents",
            "protocol": "messagepack",
        },
    )
    out = run.read()
    assert run.finish() == 0
    assert out["state"] == "Disconnected"
    assert "ServerSentEvents" in out["result"]["error"]


def ask(server: ServerProcess, connection: str, method: str, timeout: float = 5.0) -> Any:
    body = {"connection": connection, "method": method, "args": ["the server"], "timeout": timeout}
    return httpx.post(f"{server.base}/api/ask", json=body, timeout=timeout + 5).json()


@pytest.mark.parametrize(
    ("transport", "protocol"),
    [(t, "json") for t in TRANSPORTS] + [("WebSockets", "messagepack")],
)
def test_client_results(hub_server: ServerProcess, node, transport: str, protocol: str):
    run = node(
        "clientResults",
        {
            "url": hub_server.url,
            "token": make_token("alice"),
            "transport": transport,
            "protocol": protocol,
        },
    )
    connection = run.read()["connectionId"]
    assert ask(hub_server, connection, "GetLocation") == {
        "result": {"city": "Quito", "asked": "the server"}
    }
    broken = ask(hub_server, connection, "Broken")
    assert broken["error"] == "ClientResultError"
    assert "no location here" in broken["message"]
    assert ask(hub_server, connection, "NoHandler")["error"] == "ClientResultError"
    started = time.monotonic()
    assert ask(hub_server, connection, "Slow", timeout=0.5) == {"error": "TimeoutError"}
    assert time.monotonic() - started < 3
    # The connection closes while the server waits: ClientResultError, not a timeout.
    pending: list[Any] = []
    waiter = threading.Thread(
        target=lambda: pending.append(ask(hub_server, connection, "Slow", 20))
    )
    waiter.start()
    time.sleep(0.5)
    run.tell("done")
    assert run.read() == {"stopped": True}
    waiter.join(15)
    assert pending and pending[0]["error"] == "ClientResultError"
    assert "disconnected" in pending[0]["message"]


def test_client_results_through_a_backplane(server_factory, node, redis_url: str):
    import uuid

    backplane = f"{redis_url}?channel=cr{uuid.uuid4().hex[:8]}"
    holder = server_factory(backplane)
    other = server_factory(backplane)
    run = node(
        "clientResults",
        {"url": holder.url, "token": make_token("alice"), "transport": "WebSockets"},
    )
    connection = run.read()["connectionId"]
    # Asked from the process that does not hold the connection.
    assert ask(other, connection, "GetLocation")["result"] == {
        "city": "Quito",
        "asked": "the server",
    }
    assert "no location here" in ask(other, connection, "Broken")["message"]
    run.tell("done")
    assert run.read() == {"stopped": True}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_to_server_streams(hub_server: ServerProcess, node, transport: str):
    config = {"url": hub_server.url, "token": make_token("bob"), "transport": transport}
    run = node("upload", config)
    out = run.read()
    assert run.finish() == 0
    assert out["sum"] == 25
    assert out["uploaded"][0] == [["a", {"b": 2}, [3]], None]
    assert out["uploaded"][1][0] == [1]
    assert "client gave up" in out["uploaded"][1][1]
    assert out["after"] == "still alive"


def test_client_to_server_streams_over_messagepack(hub_server: ServerProcess, node):
    config = {
        "url": hub_server.url,
        "token": make_token("bob"),
        "transport": "WebSockets",
        "protocol": "messagepack",
    }
    out = node("upload", config).read()
    assert out["sum"] == 25
    assert out["uploaded"][0] == [["a", {"b": 2}, [3]], None]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_expired_token_closes_the_connection_with_the_reason(
    server_factory, node, transport: str
):
    server = server_factory(close_on_token_expiry=True)
    run = node(
        "expiry",
        {"url": server.url, "token": make_token("alice", expires_in=3), "transport": transport},
    )
    assert run.read()["echo"] == "before expiry"
    out = run.read(timeout=15)
    assert run.finish() == 0
    assert "Unauthorized: token expired" in out["closed"]
    assert out["state"] == "Disconnected"


def test_connections_per_user_and_pending_negotiations_are_capped(server_factory, node):
    server = server_factory(max_connections_per_user=2)
    run = node(
        "many",
        {"url": server.url, "token": make_token("alice"), "transport": "WebSockets", "count": 3},
    )
    results = run.read()["results"]
    assert results[:2] == [{"ok": "ok"}, {"ok": "ok"}]
    assert "429" in results[2]["error"]
    capped = server_factory(max_pending_negotiations=2)
    with httpx.Client(base_url=capped.url) as http:
        auth = {"Authorization": f"Bearer {make_token('bob')}"}
        codes = [
            http.post("/negotiate?negotiateVersion=1", headers=auth).status_code for _ in range(3)
        ]
    assert codes == [200, 200, 429]


class CuttingProxy:
    """A loopback TCP proxy whose cut() drops every connection through it (both sides)."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target = target_port
        self.loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def cut(self) -> int:
        """Abort every open connection; how many sockets were cut."""

        def abort() -> int:
            writers = list(self._writers)
            for w in writers:
                w.transport.abort()
            return len(writers)

        return asyncio.run_coroutine_threadsafe(_call(abort), self.loop).result(5)

    def __enter__(self) -> CuttingProxy:
        self.thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _call(fn: Any) -> Any:
    return fn()


def test_stateful_reconnect_resumes_with_nothing_lost_or_repeated(server_factory, node):
    server = server_factory(allow_stateful_reconnect=True, client_timeout=10.0)
    ticks, sends = 150, 60
    with CuttingProxy(server.port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/hubs/notifications"
        run = node(
            "stateful",
            {
                "url": url,
                "token": make_token("carol"),
                "transport": "WebSockets",
                "stateful": True,
                "ticks": ticks,
                "sends": sends,
                "sendInterval": 20,
            },
        )
        ready = run.read()
        first_connection = ready["connectionId"]
        response = httpx.post(
            f"{server.base}/api/tick", json={"user": "carol", "count": ticks, "interval": 0.01}
        )
        assert response.status_code == 200
        for _ in range(3):
            time.sleep(0.35)
            assert proxy.cut() >= 2
        out = run.read(timeout=40)
        assert run.finish() == 0
    # Every message once, in order, both ways, over one logical connection.
    assert out["ticks"] == list(range(ticks))
    assert out["recorded"] == list(range(sends))
    assert out["sameConnection"] == first_connection
    assert "reconnecting" not in out["events"]
