"""A hub app for the conformance tests, run in a subprocess: serve.py PORT [BACKPLANE_URL]."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from diquis.realtime import (
    ClientResultError,
    ClientStreamError,
    HubError,
    HubOptions,
    HubRoute,
    HubServer,
    jwt_authenticator,
)
from diquis.realtime import Hub as BaseHub
from diquis.webserver import serve, uvicorn_config

SECRET = "conformance-secret-with-enough-bytes-for-hs256"


class TestHub(BaseHub):
    """Methods the Node and Python clients call."""

    async def echo(self, value: object) -> object:
        return value

    async def add(self, a: float, b: float) -> float:
        return a + b

    async def who_am_i(self) -> dict[str, object]:
        return {"user": self.context.user_id, "connection": self.context.connection_id}

    async def join_group(self, group: str) -> None:
        await self.groups.add(self.context.connection_id, group)

    async def leave_group(self, group: str) -> None:
        await self.groups.remove(self.context.connection_id, group)

    async def send_to_group(self, group: str, message: str) -> None:
        await self.clients.group(group).send("ReceiveGroup", group, message)

    async def send_to_user(self, user: str, message: str) -> None:
        await self.clients.user(user).send("ReceiveNotification", "Info", message)

    async def notify_caller(self, message: object) -> None:
        await self.clients.caller.send("ReceiveNotification", "Success", message)

    async def broadcast_others(self, message: str) -> None:
        await self.clients.others.send("ReceiveBroadcast", message)

    async def counter(self, count: int, delay: float = 0.0) -> AsyncIterator[int]:
        for i in range(count):
            if delay:
                await asyncio.sleep(delay)
            yield i

    async def fail(self) -> None:
        raise RuntimeError("secret internal detail: password=hunter2")

    async def refuse(self) -> None:
        raise HubError("You may not do that.")

    async def _private(self) -> str:
        return "never reachable"

    async def sum_stream(self, start: int, numbers: AsyncIterator[int]) -> int:
        total = start
        async for n in numbers:
            total += n
        return total

    async def upload_stream(self, items: AsyncIterator[object]) -> None:
        received: list[object] = []
        try:
            async for item in items:
                received.append(item)
        except ClientStreamError as exc:
            await self.clients.caller.send("Uploaded", received, str(exc))
            return
        await self.clients.caller.send("Uploaded", received, None)

    async def record(self, n: int) -> None:
        RECORDED.setdefault(self.context.connection_id, []).append(n)

    async def recorded(self) -> list[int]:
        return RECORDED.get(self.context.connection_id, [])

    async def ask_other(self, connection_id: str, method: str) -> object:
        try:
            return await self.clients.client(connection_id).invoke(method, "from a hub", timeout=5)
        except ClientResultError as exc:
            return {"error": str(exc)}


RECORDED: dict[str, list[int]] = {}


def build(backplane: str | None) -> Starlette:
    extra: dict[str, Any] = json.loads(os.environ.get("DIQUIS_TEST_HUB_OPTIONS", "{}"))
    options = {"keep_alive_interval": 1.0, "client_timeout": 5.0, "handshake_timeout": 3.0}
    hub = HubServer(
        TestHub,
        name="notifications",
        authenticator=jwt_authenticator(SECRET),
        backplane=backplane,
        options=HubOptions(**{**options, **extra}),
    )
    tickers: set[asyncio.Task[None]] = set()

    async def ask(request: Request) -> JSONResponse:
        body = await request.json()
        proxy = hub.context.clients.client(body["connection"])
        try:
            args = body.get("args", [])
            value = await proxy.invoke(body["method"], *args, timeout=body["timeout"])
        except ClientResultError as exc:
            return JSONResponse({"error": "ClientResultError", "message": str(exc)})
        except TimeoutError:
            return JSONResponse({"error": "TimeoutError"})
        return JSONResponse({"result": value})

    async def tick(request: Request) -> JSONResponse:
        body = await request.json()

        async def run() -> None:
            for i in range(body["count"]):
                await hub.context.clients.user(body["user"]).send("Tick", i)
                await asyncio.sleep(body["interval"])

        task = asyncio.get_running_loop().create_task(run())
        tickers.add(task)
        task.add_done_callback(tickers.discard)
        return JSONResponse({"ok": True})

    async def typed(request: Request) -> JSONResponse:
        import datetime

        when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        await hub.context.clients.all.send("Typed", b"\x00\x01\xff", when, 2**40, 1.25, None)
        return JSONResponse({"ok": True})

    async def notify(request: Request) -> JSONResponse:
        body = await request.json()
        await hub.context.clients.user(body["user"]).send(
            "ReceiveNotification", body.get("type", "Info"), body["message"]
        )
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/api/notify", notify, methods=["POST"]),
            Route("/api/ask", ask, methods=["POST"]),
            Route("/api/tick", tick, methods=["POST"]),
            Route("/api/typed", typed, methods=["POST"]),
            HubRoute("/hubs/notifications", hub),
        ],
        lifespan=hub.lifespan,
    )


if __name__ == "__main__":
    port = int(sys.argv[1])
    backplane = sys.argv[2] if len(sys.argv) > 2 else None
    # The configuration `diquis serve` ships (diquis.webserver), so the official clients'
    # tests run against the WebSocket stack users get.
    serve(
        uvicorn_config(
            build(backplane),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
    )
