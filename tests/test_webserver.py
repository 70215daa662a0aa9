"""`diquis serve`'s uvicorn configuration: permessage-deflate off unless DIQUIS_WS_DEFLATE=1.

A real client (a raw socket sending the upgrade request a browser sends, offering
permessage-deflate) reads the 101 response of a hub served with exactly the configuration
`diquis serve` builds from its settings.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
import websockets

from diquis.realtime import Hub, HubOptions, HubServer
from diquis.realtime.transports.direct_websocket import DirectWebSocketTransport
from diquis.realtime.transports.websocket import WebSocketTransport
from diquis.settings import Settings
from diquis.webserver import QuietServer, uvicorn_config, uvicorn_options
from diquis.wsprotocol import frame_header
from tests.support.net import free_port, wait_for_port

RS = "\x1e"


class EchoHub(Hub):
    async def echo(self, value: object) -> object:
        return value


def upgrade_response(port: int) -> tuple[str, dict[str, str]]:
    """Open a WebSocket to the hub offering permessage-deflate; the status line and headers."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET / HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return head[0], headers


@pytest.fixture
def serve_hub(tmp_path: Path) -> Iterator[object]:
    """Serve a hub with `diquis serve`'s configuration, built from the given environment."""
    running: list[tuple[uvicorn.Server, threading.Thread, asyncio.AbstractEventLoop]] = []

    def start(env: dict[str, str]) -> tuple[int, HubServer]:
        settings = Settings.from_env({"DIQUIS_DATA_DIR": str(tmp_path), **env})
        port = free_port()
        hub = HubServer(EchoHub, options=HubOptions(max_message_size=1024 * 1024))
        config = uvicorn_config(
            hub, host="127.0.0.1", port=port, ws_deflate=settings.ws_deflate, log_level="warning"
        )
        server = QuietServer(config)  # what serve() runs
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=lambda: loop.run_until_complete(server.serve()))
        thread.start()
        running.append((server, thread, loop))
        wait_for_port(port)
        return port, hub

    yield start
    for server, thread, loop in running:
        server.should_exit = True
        thread.join(timeout=10)
        loop.close()


def test_deflate_is_off_by_default(serve_hub: object) -> None:
    port, _ = serve_hub({})  # type: ignore[operator]
    status, headers = upgrade_response(port)
    assert status.startswith("HTTP/1.1 101")
    assert "sec-websocket-extensions" not in headers


def test_deflate_is_on_with_the_variable(serve_hub: object) -> None:
    port, _ = serve_hub({"DIQUIS_WS_DEFLATE": "1"})  # type: ignore[operator]
    status, headers = upgrade_response(port)
    assert status.startswith("HTTP/1.1 101")
    assert "permessage-deflate" in headers.get("sec-websocket-extensions", "")


def test_the_quiet_main_loop_keeps_the_date_header_and_stops_when_asked(
    tmp_path: Path,
) -> None:
    port = free_port()
    hub = HubServer(EchoHub)
    server = QuietServer(uvicorn_config(hub, host="127.0.0.1", port=port, log_level="warning"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(server.serve()))
    thread.start()
    try:
        wait_for_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
        dates = [line for line in head.split("\r\n") if line.startswith("date:")]
        assert len(dates) == 1
        parsed = email.utils.parsedate_to_datetime(dates[0].split(":", 1)[1].strip())
        assert parsed.tzinfo is not None
    finally:
        server.should_exit = True  # from another thread: wakes the sleeping main loop
        thread.join(timeout=30)
        loop.close()
    assert not thread.is_alive()
    assert server.started


def test_the_shipped_options() -> None:
    options = uvicorn_options()
    assert options["ws_per_message_deflate"] is False
    assert options["ws_ping_interval"] is None  # the hub's own keep-alive pings instead
    assert uvicorn_options(ws_deflate=True)["ws_per_message_deflate"] is True
    with pytest.raises(TypeError, match="ws_per_message_deflate"):
        uvicorn_config(None, host="127.0.0.1", port=1, ws_per_message_deflate=True)


@pytest.mark.parametrize(
    ("env", "transport"),
    [({}, DirectWebSocketTransport), ({"DIQUIS_WS_DEFLATE": "1"}, WebSocketTransport)],
    ids=["deflate-off-hub-owns-the-socket", "deflate-on-asgi"],
)
async def test_the_hub_works_on_the_shipped_stack(
    serve_hub: object, env: dict[str, str], transport: type
) -> None:
    """Off, the hub takes the accepted socket over (diquis.wsprotocol); with deflate it stays
    on ASGI. Either way: handshake, a small and a 300 KB (64-bit length) message both ways,
    and the client's close."""
    port, hub = serve_hub(env)  # type: ignore[operator]
    async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
        await ws.send('{"protocol":"json","version":1}' + RS)
        assert await ws.recv() == "{}" + RS
        for i, value in enumerate(["hi", "é" * 150_000]):
            call = {"type": 1, "invocationId": str(i), "target": "echo", "arguments": [value]}
            await ws.send(json.dumps(call) + RS)
            reply = json.loads(str(await ws.recv()).rstrip(RS))
            assert reply == {"type": 3, "invocationId": str(i), "result": value}
        (connection,) = hub.connections.by_id.values()
        assert type(connection.transport) is transport
    for _ in range(100):  # the server notices the close
        if not hub.connections.by_id:
            break
        await asyncio.sleep(0.02)
    assert not hub.connections.by_id


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536, 300_000])
def test_frame_headers_match_a_websocket_library(length: int) -> None:
    """The hub's one-per-broadcast frame is what `websockets` itself would send."""
    from websockets.frames import Frame, Opcode

    payload = b"a" * length
    for text, opcode in ((True, Opcode.TEXT), (False, Opcode.BINARY)):
        expected = Frame(opcode, payload).serialize(mask=False, extensions=[])
        assert frame_header(0x81 if text else 0x82, length) + payload == expected
