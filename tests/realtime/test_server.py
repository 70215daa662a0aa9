"""The ASGI server on the wire: status codes, timers, limits, cross-server groups."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette

from diquis.realtime import (
    Hub,
    HubOptions,
    HubRoute,
    HubServer,
    MemoryBackplane,
    jwt_authenticator,
)
from diquis.webserver import uvicorn_options
from tests.realtime.conftest import SECRET, make_token
from tests.support.threaded import ThreadedServer

RS = "\x1e"
HANDSHAKE = '{"protocol":"json","version":1}' + RS


class EchoHub(Hub):
    async def echo(self, value: Any) -> Any:
        return value

    async def who_am_i(self) -> str:
        return self.context.connection_id


FAST = HubOptions(
    keep_alive_interval=0.2,
    client_timeout=0.8,
    handshake_timeout=0.5,
    max_message_size=128 * 1024,
    long_polling_timeout=0.5,
)


def app_with(*hubs: tuple[str, HubServer]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for _, hub in hubs:
            await hub.start()
        yield
        for _, hub in hubs:
            await hub.stop()

    return Starlette(routes=[HubRoute(path, hub) for path, hub in hubs], lifespan=lifespan)


@pytest.fixture(params=["uvicorn-defaults", "diquis-serve"])
def stack(request: pytest.FixtureRequest) -> dict[str, Any]:
    """uvicorn as it comes (the hub over ASGI), and as `diquis serve` runs it (the hub takes
    accepted sockets over: diquis.wsprotocol)."""
    return uvicorn_options() if request.param == "diquis-serve" else {}


@pytest.fixture
def server(stack: dict[str, Any]):
    hub = HubServer(EchoHub, authenticator=jwt_authenticator(SECRET), options=FAST)
    with ThreadedServer(app_with(("/hub", hub)), **stack) as running:
        yield running


def auth(user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(user)}"}


def records(data: str) -> list[dict[str, Any]]:
    return [json.loads(r) for r in data.split(RS) if r]


def test_negotiate_versions_and_refusals(server: ThreadedServer):
    with httpx.Client(base_url=server.base + "/hub") as http:
        assert http.post("/negotiate?negotiateVersion=1").status_code == 401
        assert http.get("/negotiate", headers=auth()).status_code == 405
        assert http.post("/negotiate?negotiateVersion=x", headers=auth()).status_code == 400
        v1 = http.post("/negotiate?negotiateVersion=1", headers=auth()).json()
        assert v1["negotiateVersion"] == 1
        assert v1["connectionToken"] != v1["connectionId"]
        v0 = http.post("/negotiate", headers=auth()).json()
        assert v0["negotiateVersion"] == 0
        assert "connectionToken" not in v0


def test_long_polling_life_cycle_and_status_codes(server: ThreadedServer):
    with httpx.Client(base_url=server.base + "/hub", headers=auth()) as http:
        token = http.post("/negotiate?negotiateVersion=1").json()["connectionToken"]
        assert http.post("/", content=HANDSHAKE).status_code == 400  # no id
        assert http.get("/?id=unknown").status_code == 404
        assert http.get(f"/?id={token}", headers=auth("mallory")).status_code == 403
        first = http.get(f"/?id={token}")
        assert (first.status_code, first.content) == (200, b"")  # establishes the transport
        assert http.post(f"/?id={token}", content=HANDSHAKE).status_code == 200
        assert http.get(f"/?id={token}").text == "{}" + RS
        invoke = {"type": 1, "invocationId": "1", "target": "echo", "arguments": ["hi"]}
        assert http.post(f"/?id={token}", content=json.dumps(invoke) + RS).status_code == 200
        assert records(http.get(f"/?id={token}").text) == [
            {"type": 3, "invocationId": "1", "result": "hi"}
        ]
        sse = http.get(f"/?id={token}", headers={"Accept": "text/event-stream"})
        assert sse.status_code == 409  # a second transport
        assert http.delete(f"/?id={token}").status_code == 202
        assert http.get(f"/?id={token}").status_code == 204
        assert http.post(f"/?id={token}", content=HANDSHAKE).status_code == 404


async def test_a_new_poll_ends_the_outstanding_one_with_204(server: ThreadedServer):
    async with httpx.AsyncClient(base_url=server.base + "/hub", headers=auth()) as http:
        token = (await http.post("/negotiate?negotiateVersion=1")).json()["connectionToken"]
        await http.get(f"/?id={token}")
        await http.post(f"/?id={token}", content=HANDSHAKE)
        await http.get(f"/?id={token}")  # the handshake response
        first = asyncio.create_task(http.get(f"/?id={token}"))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(http.get(f"/?id={token}"))
        assert (await first).status_code == 204
        assert (await second).status_code == 200


async def ws_open(server: ThreadedServer, path: str = "/hub", user: str = "alice"):
    url = f"ws://127.0.0.1:{server.port}{path}?access_token={make_token(user)}"
    ws = await websockets.connect(url)
    await ws.send(HANDSHAKE)
    assert await ws.recv() == "{}" + RS
    return ws


async def next_messages(ws: Any, timeout: float = 3.0) -> list[dict[str, Any]]:
    return records(await asyncio.wait_for(ws.recv(), timeout))


async def until_closed(ws: Any, timeout: float = 3.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            async for frame in ws:
                seen.extend(records(frame))
    except websockets.ConnectionClosed:
        pass
    return seen


async def test_server_pings_while_the_client_is_quiet(server: ThreadedServer):
    ws = await ws_open(server)
    started = time.monotonic()
    assert await next_messages(ws) == [{"type": 6}]
    assert time.monotonic() - started < 0.6
    await ws.close()


async def test_client_timeout_closes_with_a_reason(server: ThreadedServer):
    ws = await ws_open(server)
    seen = await until_closed(ws)
    assert seen[-1] == {
        "type": 7,
        "error": "Server timeout elapsed without receiving a message from the client.",
    }


async def test_handshake_timeout_closes_the_socket(server: ThreadedServer):
    url = f"ws://127.0.0.1:{server.port}/hub?access_token={make_token('alice')}"
    async with websockets.connect(url) as ws:
        started = time.monotonic()
        assert await until_closed(ws) == []
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ('{"type":1,"target":"echo","arguments":["' + "x" * 200_000 + '"]}' + RS, "maximum size"),
        ("{nope" + RS, "not valid JSON"),
        ('{"type":77}' + RS, "unknown message type 77"),
    ],
)
async def test_bad_input_closes_with_a_reason(server: ThreadedServer, frame: str, reason: str):
    ws = await ws_open(server)
    await ws.send(frame)
    closes = [m for m in await until_closed(ws) if m["type"] == 7]
    assert len(closes) == 1
    assert reason in closes[0]["error"]


async def test_groups_and_sends_cross_servers_through_the_backplane():
    bus = f"test-{time.monotonic_ns()}"
    one = HubServer(EchoHub, name="echo", backplane=MemoryBackplane(bus), options=FAST)
    two = HubServer(EchoHub, name="echo", backplane=MemoryBackplane(bus), options=FAST)
    with ThreadedServer(app_with(("/one", one), ("/two", two))) as server:
        ws = await ws_open(server, "/two")
        await ws.send('{"type":1,"invocationId":"1","target":"WhoAmI","arguments":[]}' + RS)
        [reply] = [m for m in await next_messages(ws) if m["type"] == 3]
        connection_id = reply["result"]
        # From server one, which does not hold the connection.
        future = asyncio.run_coroutine_threadsafe(_add_and_send(one, connection_id), server.loop)
        await asyncio.wrap_future(future)
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(3):
            while not any(m["type"] == 1 for m in got):
                got.extend(await next_messages(ws))
                await ws.send('{"type":6}' + RS)
        assert [m for m in got if m["type"] == 1] == [
            {"type": 1, "target": "Hello", "arguments": ["blue", {"n": 1}]}
        ]
        await ws.close()


async def _add_and_send(hub: HubServer, connection_id: str) -> None:
    await hub.context.groups.add(connection_id, "blue")
    await hub.context.clients.group("blue").send("Hello", "blue", {"n": 1})


@pytest.mark.parametrize("where", ["handshake", "message"])
async def test_a_30000_deep_payload_closes_cleanly_with_one_log_line(
    server: ThreadedServer, caplog: pytest.LogCaptureFixture, where: str
):
    deep = "[" * 30_000 + "]" * 30_000
    caplog.set_level(logging.INFO)
    url = f"ws://127.0.0.1:{server.port}/hub?access_token={make_token('alice')}"
    async with websockets.connect(url, max_size=None) as ws:
        if where == "handshake":
            await ws.send(deep + RS)
            [answer] = records(await asyncio.wait_for(ws.recv(), 3))
            assert "depth" in answer["error"]
        else:
            await ws.send(HANDSHAKE)
            assert await ws.recv() == "{}" + RS
            await ws.send('{"type":1,"target":"echo","arguments":[' + deep + "]}" + RS)
            closes = [m for m in await until_closed(ws) if m["type"] == 7]
            assert closes == [
                {"type": 7, "error": "message nesting exceeds the maximum depth of 64"}
            ]
    await asyncio.sleep(0.1)
    assert not [r for r in caplog.records if r.exc_info or "Recursion" in r.getMessage()]
    lines = [r for r in caplog.records if "depth" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO


async def test_stateful_reconnect_within_the_window_resumes_and_past_it_is_refused(
    stack: dict[str, Any],
):
    options = HubOptions(
        keep_alive_interval=5,
        client_timeout=5,
        allow_stateful_reconnect=True,
        stateful_reconnect_window=0.6,
    )
    hub = HubServer(EchoHub, authenticator=jwt_authenticator(SECRET), options=options)
    with ThreadedServer(app_with(("/hub", hub)), **stack) as server:
        async with httpx.AsyncClient(base_url=server.base + "/hub", headers=auth()) as http:
            negotiate = "/negotiate?negotiateVersion=1&useStatefulReconnect=true"
            body = (await http.post(negotiate)).json()
        assert body["useStatefulReconnect"] is True
        url = (
            f"ws://127.0.0.1:{server.port}/hub?id={body['connectionToken']}"
            f"&access_token={make_token('alice')}"
        )
        ws = await websockets.connect(url)
        await ws.send('{"protocol":"json","version":2}' + RS)
        assert await ws.recv() == "{}" + RS
        await ws.send('{"type":1,"invocationId":"1","target":"echo","arguments":["a"]}' + RS)
        assert records(await ws.recv()) == [{"type": 3, "invocationId": "1", "result": "a"}]
        await ws.close()
        await asyncio.sleep(0.1)
        # Within the window: the same connection, Sequence first, the unacked completion again.
        ws = await websockets.connect(url)
        assert records(await ws.recv()) == [
            {"type": 9, "sequenceId": 1},
            {"type": 3, "invocationId": "1", "result": "a"},
        ]
        await ws.send('{"type":9,"sequenceId":2}' + RS + '{"type":8,"sequenceId":1}' + RS)
        await ws.send('{"type":1,"invocationId":"2","target":"echo","arguments":["b"]}' + RS)
        got = records(await ws.recv())
        assert {"type": 3, "invocationId": "2", "result": "b"} in got
        await ws.close()
        await asyncio.sleep(1.5)  # past the window (and a sweep)
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url)
        assert refused.value.response.status_code == 404


async def test_a_refused_websocket_logs_one_info_line_without_the_token(
    server: ThreadedServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    secret_token = "not-a-jwt-but-secret"
    url = f"ws://127.0.0.1:{server.port}/hub?access_token={secret_token}"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url)
    assert refused.value.response.status_code == 401
    await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if secret_token in r.getMessage()]
    lines = [r for r in caplog.records if "refused WebSocket" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.INFO, "refused WebSocket /hub: 401 Unauthorized")
    ]


def test_uvicorn_lines_lose_their_access_tokens():
    from diquis.realtime.logfilter import HubLogFilter

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4", "GET", "/hubs/x?id=abc&access_token=eyJ.secret.sig", "1.1", 200), None,
    )  # fmt: skip
    assert HubLogFilter().filter(record)
    assert "eyJ" not in record.getMessage()
    assert "access_token=***" in record.getMessage()


async def test_a_client_that_stops_reading_is_dropped_and_others_carry_on():
    """The socket's buffer fills (writes pause), frames pile up in the outbox past
    max_buffered_bytes, and the server closes that connection; a reading client is served.

    On the shipped stack (the hub owns the socket): its close does not wait for the peer to
    read (the socket's close timer ends it), so the server also shuts down promptly."""
    stack = uvicorn_options()
    options = HubOptions(keep_alive_interval=5, client_timeout=30, max_buffered_bytes=512 * 1024)
    hub = HubServer(EchoHub, authenticator=jwt_authenticator(SECRET), options=options)
    with ThreadedServer(app_with(("/hub", hub)), join_timeout=30, **stack) as server:
        url = f"ws://127.0.0.1:{server.port}/hub?access_token={make_token('bob')}"
        stalled = await websockets.connect(url, max_queue=1)  # stops reading when full
        await stalled.send(HANDSHAKE)
        assert await stalled.recv() == "{}" + RS
        reader = await ws_open(server)
        stalled_id = next(c.id for c in list(hub.connections.by_id.values()) if c.user_id == "bob")
        chunk = "x" * 64 * 1024

        async def flood() -> None:
            for _ in range(800):  # 50 MiB: more than the kernel's socket buffers take
                await hub.context.clients.client(stalled_id).send("Flood", chunk)
                await asyncio.sleep(0)
            await hub.context.clients.all.send("Still", "here")

        done = asyncio.run_coroutine_threadsafe(flood(), server.loop)
        await asyncio.wrap_future(done)
        for _ in range(200):
            if stalled_id not in hub.connections.by_id:
                break
            await asyncio.sleep(0.02)
        assert stalled_id not in hub.connections.by_id
        assert await next_messages(reader) == [
            {"type": 1, "target": "Still", "arguments": ["here"]}
        ]
        await reader.close()
        stalled.transport.abort()
        for _ in range(250):  # the server sees both sockets go
            if not server.server.server_state.connections:
                break
            await asyncio.sleep(0.02)
        assert not server.server.server_state.connections
