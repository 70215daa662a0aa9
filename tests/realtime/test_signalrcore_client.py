"""signalrcore 1.0.2 (PyPI), the most used Python SignalR client, against the server.

It asks for version 0 of the JSON protocol in its handshake (the negotiate version), which
the server accepts as ASP.NET Core does (every version up to its own).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from typing import Any

import pytest
from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.types import HttpTransportType

from tests.realtime.conftest import ServerProcess, make_token


class Client:
    """A signalrcore connection and queues of what it received."""

    def __init__(self, url: str, user: str, transport: str = "WebSockets", reconnect: bool = False):
        token = make_token(user)
        builder = HubConnectionBuilder().with_url(
            url,
            options={
                "access_token_factory": lambda: token,
                "transport": HttpTransportType(transport),
            },
        )
        if reconnect:
            builder = builder.with_automatic_reconnect(
                {"type": "raw", "keep_alive_interval": 1, "reconnect_interval": 0.5}
            )
        self.connection = builder.build()
        self.opened = threading.Event()
        self.reconnected = threading.Event()
        self.messages: dict[str, queue.Queue[list[Any]]] = {}
        self.connection.on_open(self.opened.set)
        self.connection.on_reconnect(self.reconnected.set)

    def listen(self, method: str) -> queue.Queue[list[Any]]:
        inbox: queue.Queue[list[Any]] = queue.Queue()
        self.connection.on(method, inbox.put)
        self.messages[method] = inbox
        return inbox

    def start(self) -> None:
        self.connection.start()
        assert self.opened.wait(10), "signalrcore did not open"

    def call(self, method: str, *args: Any, timeout: float = 10) -> Any:
        done: queue.Queue[Any] = queue.Queue()
        self.connection.send(method, list(args), on_invocation=done.put)
        message = done.get(timeout=timeout)
        return message.result

    def stop(self) -> None:
        self.connection.stop()


@pytest.fixture
def clients(hub_server: ServerProcess):
    made: list[Client] = []

    def make(user: str, **kwargs: Any) -> Client:
        client = Client(hub_server.url, user, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        with contextlib.suppress(Exception):
            client.stop()


# Its long-polling transport never completes the handshake here: it reads every POST
# response as JSON, and the send endpoint answers 200 with an empty body (as ASP.NET Core).
@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents"])
def test_signalrcore_echo(clients, transport: str):
    client = clients("erin", transport=transport)
    client.start()
    assert client.call("Echo", {"name": "Zoë", "n": [1, 2.5]}) == {"name": "Zoë", "n": [1, 2.5]}
    assert client.call("WhoAmI")["user"] == "erin"


def test_signalrcore_broadcast_and_group(clients):
    erin, fred = clients("erin"), clients("fred")
    broadcasts = fred.listen("ReceiveBroadcast")
    groups = [erin.listen("ReceiveGroup"), fred.listen("ReceiveGroup")]
    erin.start()
    fred.start()
    erin.call("BroadcastOthers", "hello others")
    assert broadcasts.get(timeout=5) == ["hello others"]
    fred.call("JoinGroup", "green")
    erin.call("SendToGroup", "green", "for green")
    assert groups[1].get(timeout=5) == ["green", "for green"]
    time.sleep(0.3)
    assert groups[0].empty()  # erin is not in the group
