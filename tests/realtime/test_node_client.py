"""Conformance: the official @microsoft/signalr client (Node) against a real server."""

from __future__ import annotations

import httpx
import pytest

from tests.realtime.conftest import ServerProcess, make_token

TRANSPORTS = ["WebSockets", "ServerSentEvents", "LongPolling"]


@pytest.mark.parametrize("transport", [*TRANSPORTS, "WebSockets+skipNegotiation"])
def test_invocations_messages_groups_and_errors(hub_server: ServerProcess, node, transport: str):
    name, _, skip = transport.partition("+")
    run = node(
        "basic",
        {
            "url": hub_server.url,
            "token": make_token("alice"),
            "transport": name,
            "skipNegotiation": bool(skip),
        },
    )
    out = run.read()
    assert run.finish() == 0
    assert out["string"] == "hello"
    assert out["unicode"] == "héllo wörld ✓ 日本語 🎉"
    assert out["number"] == 5.5
    assert out["nested"] == {"a": [1, 2, {"b": None, "c": True}], "d": "x"}
    assert out["whoami"]["user"] == "alice"
    assert out["caseInsensitive"] == 42
    assert out["notification"] == ["Success", {"text": "to the caller"}]
    # Joined: got "first"; after leaving, "second" never arrived (the caller marker did).
    assert out["group"] == [["blue", "first"]]
    assert out["stream"] == [0, 1, 2, 3]
    assert out["fail"]["error"] == "An unexpected error occurred invoking 'Fail' on the server."
    assert "hunter2" not in str(out)
    assert out["refuse"]["error"] == "You may not do that."
    assert "does not exist" in out["missing"]["error"]
    assert "does not exist" in out["private"]["error"]
    assert "expected 2 argument(s), got 1" in out["wrongArgs"]["error"]
    assert out["afterErrors"] == "still alive"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_user_targeting_reaches_every_connection_of_the_user(
    hub_server: ServerProcess, node, transport: str
):
    tokens = {"alice": make_token("alice"), "bob": make_token("bob")}
    run = node("users", {"url": hub_server.url, "tokens": tokens, "transport": transport})
    assert run.read() == {"ready": True}
    # From an ordinary HTTP handler of the app, through the hub context.
    response = httpx.post(
        f"{hub_server.base}/api/notify",
        json={"user": "alice", "type": "Success", "message": "Tenant Acme is ready."},
    )
    assert response.status_code == 200
    out = run.read()
    assert run.finish() == 0
    expected = [["Info", "from bob"], ["Success", "Tenant Acme is ready."]]
    assert out["alice1"] == expected
    assert out["alice2"] == expected
    assert out["bob"] == [["Info", "bob marker"]]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("token", ["not-a-jwt", "wrong-secret", "expired"])
def test_bad_token_is_refused(hub_server: ServerProcess, node, transport: str, token: str):
    value = {
        "not-a-jwt": "not-a-jwt",
        "wrong-secret": make_token("alice", secret="another-secret-that-is-long-enough-for-hs256"),
        "expired": make_token("alice", expires_in=-60),
    }[token]
    run = node("badToken", {"url": hub_server.url, "token": value, "transport": transport})
    out = run.read()
    assert run.finish() == 0
    assert out["state"] == "Disconnected"
    assert "401" in out["result"]["error"]


def test_bad_token_on_skip_negotiation_websocket_gets_401(hub_server: ServerProcess):
    # The JS client hides the status of a failed upgrade; check it on the wire.
    import asyncio

    import websockets

    async def attempt() -> int:
        url = hub_server.url.replace("http", "ws") + "?access_token=nope"
        try:
            async with websockets.connect(url):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(attempt()) == 401


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_automatic_reconnect_after_server_restart(hub_server: ServerProcess, node, transport: str):
    run = node(
        "reconnect",
        {
            "url": hub_server.url,
            "token": make_token("alice"),
            "transport": transport,
            "reconnect": True,
        },
    )
    assert run.read() == {"ready": True, "before": "before"}
    hub_server.stop()
    hub_server.start()
    out = run.read(timeout=30)
    assert run.finish() == 0
    assert out["after"] == "after"
    assert out["events"] == ["reconnecting", "reconnected"]
