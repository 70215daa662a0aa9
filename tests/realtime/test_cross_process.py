"""Two web processes and one plain process, joined by a real backplane."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.realtime.conftest import HERE, REPO, make_token


@pytest.fixture(params=["postgres", "redis", "sqlite"])
def shared_backplane(request: pytest.FixtureRequest, tmp_path) -> str:
    channel = f"x{uuid.uuid4().hex[:10]}"
    if request.param == "postgres":
        return f"{request.getfixturevalue('postgres_url')}?channel={channel}"
    if request.param == "redis":
        return f"{request.getfixturevalue('redis_url')}?channel={channel}"
    return f"sqlite:///{tmp_path}/outbox.db"


def test_plain_process_reaches_a_user_on_every_web_process(
    server_factory, node, shared_backplane: str
):
    web1 = server_factory(shared_backplane)
    web2 = server_factory(shared_backplane)
    alice = node(
        "listen",
        {"urls": [web1.url, web2.url], "token": make_token("alice"), "transport": "WebSockets"},
    )
    bob = node(
        "listen",
        {"urls": [web2.url], "token": make_token("bob"), "transport": "LongPolling", "expect": 0},
    )
    assert alice.read() == {"ready": True}
    assert bob.read() == {"ready": True}

    sender = subprocess.run(
        [sys.executable, str(HERE / "send.py"), shared_backplane, "alice", "Tenant Acme is ready."],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        timeout=30,
        check=False,
    )
    assert sender.returncode == 0

    alice.tell("done")
    received = alice.read()["received"]
    assert alice.finish() == 0
    bob.tell("done")
    bob_received = bob.read()["received"]
    assert bob.finish() == 0
    # The connection on web process 2 got it, and so did the one on web process 1.
    assert received == [
        [["Success", "Tenant Acme is ready."]],
        [["Success", "Tenant Acme is ready."]],
    ]
    assert bob_received == [[]]
