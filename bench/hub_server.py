"""A hub server for bench/hub.py, in its own process: ``hub_server.py SERVER PORT``.

SERVER is ``diquis`` (``diquis.realtime.HubServer``), ``diquis-asgi`` (the same hub with
uvicorn's plain sans-IO protocol, served over ASGI throughout: the stack before the hub's
socket takeover, for comparison) or ``aiosignalr`` (its ASGI app, with
the text-frame patch below). Both are served the same way, with ``diquis serve``'s own
uvicorn configuration (``diquis.webserver.uvicorn_config``: uvloop, httptools, the sans-IO
WebSocket implementation, no WS-level pings, permessage-deflate off unless
``DIQUIS_WS_DEFLATE=1``), one process, hub at ``/hub``.
Both get the same bare ASGI dispatcher, which also answers the driver's control requests:

* ``GET /bench/count`` — how many hub connections the server holds (handshake done);
* ``GET /bench/objects`` — live objects by type, to see what a connection is made of;
* ``POST /bench/broadcast?step=S&rate=R&count=N&size=B`` — broadcast N invocations of
  ``tick(step, seq, sent_ms, payload)`` to every connection, R per second (0: as fast as
  the server goes), B bytes of payload; ``sent_ms`` is ``time.time() * 1000`` taken just
  before the broadcast call. Answers when the last broadcast call has returned, with the
  mean and longest time one broadcast call took (the server's fan-out).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Broadcast = Callable[[int, int, float, str], Awaitable[None]]
HUB_PATH = "/hub"


# -- Diquis ----------------------------------------------------------------------------


def diquis_app() -> tuple[Callable[..., Awaitable[None]], Broadcast, Callable[[], int]]:
    from diquis.realtime import Hub, HubServer

    class BenchHub(Hub):
        async def echo(self, value: object) -> object:
            return value

    hub = HubServer(BenchHub, name="bench")
    clients = hub.context.clients

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # The hub serves the path it is mounted on: mount it at /hub, as Starlette would.
        scope["root_path"] = scope.get("root_path", "") + HUB_PATH
        await hub(scope, receive, send)

    async def broadcast(step: int, seq: int, sent_ms: float, payload: str) -> None:
        await clients.all.send("tick", step, seq, sent_ms, payload)

    return app, broadcast, lambda: len(hub.connections)


# -- aiosignalr ------------------------------------------------------------------------


def patch_aiosignalr_text_frames() -> None:
    """Make aiosignalr's ASGI socket send JSON-protocol frames as text frames.

    aiosignalr 0.1.1 sends every frame with ``{"type": "websocket.send", "bytes": ...}``.
    The official client (JSON hub protocol) treats a binary frame as an error ("Invalid
    input for JSON hub protocol. Expected a string.") and drops the connection, so as
    shipped no official client can talk to it. Here frames that are valid UTF-8 (every
    JSON-protocol frame) go out as text; MessagePack frames stay binary. Nothing else changes.
    """
    from aiosignalr.server import asgi

    async def send_bytes(self: Any, data: bytes) -> None:
        await self._accept()
        try:
            text = data.decode()
        except UnicodeDecodeError:
            await self._send({"type": "websocket.send", "bytes": data})
        else:
            await self._send({"type": "websocket.send", "text": text})

    asgi._AsgiSocket.send_bytes = send_bytes


def aiosignalr_app() -> tuple[Callable[..., Awaitable[None]], Broadcast, Callable[[], int]]:
    from aiosignalr.server import Hub, SignalRServer

    patch_aiosignalr_text_frames()

    class BenchHub(Hub):
        async def echo(self, value: object) -> object:
            return value

    server = SignalRServer(BenchHub)
    app = server.asgi_app(path=HUB_PATH)
    lifetime = server.lifetime

    async def broadcast(step: int, seq: int, sent_ms: float, payload: str) -> None:
        await lifetime.send_all("tick", (step, seq, sent_ms, payload))

    # A connection counts once its handshake is done, as for Diquis.
    def count() -> int:
        return sum(1 for c in lifetime.connections.values() if c is not None and c.protocol)

    return app, broadcast, count


# -- the shared ASGI front ---------------------------------------------------------------


async def run_broadcasts(
    broadcast: Broadcast, step: int, rate: float, count: int, size: int
) -> dict[str, Any]:
    payload = "x" * size
    start = time.perf_counter()
    first_ms = last_ms = call_total = call_max = 0.0
    for seq in range(count):
        if rate > 0:
            delay = start + seq / rate - time.perf_counter()
            await asyncio.sleep(delay if delay > 0 else 0)
        else:
            await asyncio.sleep(0)  # let the writers run between broadcasts
        sent_ms = time.time() * 1000
        if seq == 0:
            first_ms = sent_ms
        last_ms = sent_ms
        called = time.perf_counter()
        await broadcast(step, seq, sent_ms, payload)
        took = time.perf_counter() - called
        call_total += took
        call_max = max(call_max, took)
    return {
        "sent": count,
        "first_ms": first_ms,
        "last_ms": last_ms,
        "seconds": time.perf_counter() - start,
        # How long one broadcast call took: the server's own fan-out (both servers return
        # once every socket has been written to or its frame queued).
        "call_ms_mean": call_total / max(1, count) * 1000,
        "call_ms_max": call_max * 1000,
    }


def object_census() -> dict[str, Any]:
    """Live objects by type (the 30 most common) and Python's allocated blocks."""
    import collections
    import gc

    gc.collect()
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    out: dict[str, Any] = {"blocks": sys.getallocatedblocks(), "types": counts.most_common(30)}
    if tracemalloc.is_tracing():  # PYTHONTRACEMALLOC=1: bytes allocated, by source file
        stats = tracemalloc.take_snapshot().statistics("lineno")
        out["files"] = [
            (f"{s.traceback[0].filename}:{s.traceback[0].lineno}", s.size) for s in stats[:80]
        ]
    return out


def front(server: str) -> Callable[..., Awaitable[None]]:
    hub_app, broadcast, count = aiosignalr_app() if server == "aiosignalr" else diquis_app()

    async def respond(send: Send, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        path = scope.get("path", "")
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif kind == "http" and path == "/bench/count":
            await respond(send, {"connections": count()})
        elif kind == "http" and path == "/bench/objects":
            await respond(send, object_census())
        elif kind == "http" and path == "/bench/broadcast":
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            result = await run_broadcasts(
                broadcast,
                int(query["step"]),
                float(query["rate"]),
                int(query["count"]),
                int(query.get("size", "64")),
            )
            await respond(send, result)
        elif path == HUB_PATH or path.startswith(HUB_PATH + "/"):
            await hub_app(scope, receive, send)
        elif kind == "http":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    return app


def main() -> None:
    import argparse

    from diquis.settings import ws_deflate
    from diquis.webserver import serve, uvicorn_config

    parser = argparse.ArgumentParser()
    parser.add_argument("server", choices=["diquis", "diquis-asgi", "aiosignalr"])
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    # `diquis serve`'s own configuration (loop, HTTP and WS implementations, deflate, pings,
    # backlog), read from the same DIQUIS_WS_DEFLATE; only logging differs.
    config = uvicorn_config(
        front(args.server),
        host="127.0.0.1",
        port=args.port,
        ws_deflate=ws_deflate(),
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    if args.server == "diquis-asgi":
        # For comparison only: uvicorn's own sans-IO protocol, the hub served over ASGI for
        # the socket's whole life (what `diquis serve` did before the takeover).
        config.ws = "websockets-sansio"
    serve(config)


if __name__ == "__main__":
    main()
