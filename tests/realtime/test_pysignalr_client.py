"""An independent Python SignalR client (pysignalr, PyPI) against the server."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage
from pysignalr.protocol.json import JSONProtocol
from pysignalr.protocol.messagepack import MessagepackProtocol

from tests.realtime.conftest import ServerProcess, make_token


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
async def test_pysignalr_invokes_and_receives(hub_server: ServerProcess, protocol: str):
    token = make_token("carol")
    # pysignalr applies access_token_factory only after negotiating; send the header itself.
    client = SignalRClient(
        hub_server.url,
        protocol=MessagepackProtocol() if protocol == "messagepack" else JSONProtocol(),
        headers={"Authorization": f"Bearer {token}"},
    )
    opened = asyncio.Event()
    results: asyncio.Queue[Any] = asyncio.Queue()
    notes: asyncio.Queue[list[Any]] = asyncio.Queue()

    async def on_open() -> None:
        opened.set()

    async def on_note(args: list[Any]) -> None:
        await notes.put(args)

    async def on_result(message: CompletionMessage) -> None:
        await results.put(message)

    client.on_open(on_open)
    client.on("ReceiveNotification", on_note)
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(opened.wait(), 10)
        await client.send("Echo", [{"name": "Zoë", "n": [1, 2.5]}], on_invocation=on_result)
        echoed = await asyncio.wait_for(results.get(), 5)
        assert echoed.result == {"name": "Zoë", "n": [1, 2.5]}
        await client.send("WhoAmI", [], on_invocation=on_result)
        assert (await asyncio.wait_for(results.get(), 5)).result["user"] == "carol"
        await client.send("NotifyCaller", ["hello from python"])
        assert await asyncio.wait_for(notes.get(), 5) == ["Success", "hello from python"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
