"""A hub app for the conformance tests, run in a subprocess: serve.py PORT [BACKPLANE_URL]."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from diquis.realtime import Hub as BaseHub
from diquis.realtime import HubError, HubOptions, HubRoute, HubServer, jwt_authenticator

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


def build(backplane: str | None) -> Starlette:
    hub = HubServer(
        TestHub,
        name="notifications",
        authenticator=jwt_authenticator(SECRET),
        backplane=backplane,
        options=HubOptions(keep_alive_interval=1.0, client_timeout=5.0, handshake_timeout=3.0),
    )

    async def notify(request: Request) -> JSONResponse:
        body = await request.json()
        await hub.context.clients.user(body["user"]).send(
            "ReceiveNotification", body.get("type", "Info"), body["message"]
        )
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/api/notify", notify, methods=["POST"]),
            HubRoute("/hubs/notifications", hub),
        ],
        lifespan=hub.lifespan,
    )


if __name__ == "__main__":
    port = int(sys.argv[1])
    backplane = sys.argv[2] if len(sys.argv) > 2 else None
    uvicorn.run(
        build(backplane),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
