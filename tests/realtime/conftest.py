"""Fixtures for the hub tests: servers in subprocesses or threads, tokens, the Node client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.support import processes
from tests.support.net import free_port, wait_for_port

HERE = Path(__file__).parent
REPO = HERE.parent.parent
NODE_DIR = HERE / "node"
SECRET = "conformance-secret-with-enough-bytes-for-hs256"


def make_token(user: str, secret: str = SECRET, expires_in: int = 600) -> str:
    """A signed HS256 JWT for `user`."""
    return jwt.encode(
        {"sub": user, "exp": int(time.time()) + expires_in}, secret, algorithm="HS256"
    )


@dataclass
class ServerProcess:
    """The test hub app (tests/realtime/serve.py) running in a subprocess."""

    port: int
    backplane: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hubs/notifications"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [sys.executable, str(HERE / "serve.py"), str(self.port)]
        if self.backplane:
            args.append(self.backplane)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "src"),
            "DIQUIS_TEST_HUB_OPTIONS": json.dumps(self.options),
        }
        self.process = processes.spawn(args, env=env, cwd=str(REPO))
        wait_for_port(self.port)

    def stop(self) -> None:
        processes.stop(self.process, timeout=5, kill_timeout=5)
        self.process = None


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """Start test hub apps in subprocesses; every one is stopped (by handle) afterwards."""
    started: list[ServerProcess] = []

    def start(backplane: str | None = None, **options: Any) -> ServerProcess:
        server = ServerProcess(free_port(), backplane, options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def hub_server(server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """One test hub app with the in-memory backplane."""
    return server_factory()


class NodeScenario:
    """A running scenario.mjs process: read its JSON lines, talk to it on stdin."""

    def __init__(self, node_bin: str, scenario: str, config: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [node_bin, "scenario.mjs", scenario, json.dumps(config)],
            cwd=str(NODE_DIR),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next JSON line the scenario prints."""
        assert self.process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            self.kill()
            raise AssertionError(f"node scenario printed nothing within {timeout}s")
        value: dict[str, Any] = json.loads(result[0])
        assert "fatal" not in value, value["fatal"]
        return value

    def tell(self, line: str) -> None:
        """Write a line to the scenario's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the scenario to exit; its return code."""
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        processes.kill(self.process, timeout=5)


@pytest.fixture
def node(node_bin: str) -> Iterator[Callable[[str, dict[str, Any]], NodeScenario]]:
    """Start scenarios of the official client; each is killed (by handle) afterwards."""
    from tests.conftest import need

    need(
        (NODE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir(),
        "tests/realtime/node has no node_modules (run `npm ci` there, as `make test` does)",
    )
    running: list[NodeScenario] = []

    def start(scenario: str, config: dict[str, Any]) -> NodeScenario:
        run = NodeScenario(node_bin, scenario, config)
        running.append(run)
        return run

    yield start
    for run in running:
        run.kill()
