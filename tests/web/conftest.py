"""A real ``diquis serve`` (web app included) for end-to-end tests in a real browser."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import need
from tests.support import processes
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]
WEB_DIST = REPO / "web" / "dist"
SUPERADMIN_EMAIL = "admin@example.com"
SUPERADMIN_PASSWORD = "Platform-Keeper-2026!"
SECRET = "e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@dataclass
class DiquisServer:
    """``diquis serve`` as a child process, stopped and restarted by its own handle."""

    data_dir: Path
    port: int
    env_extra: dict[str, str] = field(default_factory=dict)
    concurrency: int = 10
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"serve-{self.port}.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIQUIS_")}
        env.update(
            DIQUIS_DATA_DIR=str(self.data_dir),
            DIQUIS_DEV="1",
            DIQUIS_PUBLIC_URL=self.url,
            DIQUIS_SECRET_KEY=SECRET,
            DIQUIS_WEB_DIR=str(WEB_DIST),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env_extra)
        return env

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "diquis.cli", *args],
            env=self.env(), capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def start(self, timeout: float = 40) -> None:
        """Start serving and wait until the API answers."""
        self.starts += 1
        self.popen = processes.spawn(
            [sys.executable, "-m", "diquis.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--concurrency", str(self.concurrency)],
            log=self.log, append=True, banner=f"\n--- start #{self.starts} ---\n",
            env=self.env(), cwd=REPO,
        )  # fmt: skip
        processes.wait_ready(
            self.popen, lambda: processes.answers_readyz(self.url),
            what="diquis serve", output=self.output, timeout=timeout,
        )  # fmt: skip

    def kill(self) -> None:
        """End the process abruptly (SIGKILL), as a crash would."""
        processes.kill(self.popen, timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not go within 10 s."""
        processes.stop(self.popen, timeout=10, kill_timeout=10)

    def output(self) -> str:
        return processes.read_log(self.log)


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """The built web app; the tests cannot run without it."""
    need(
        (WEB_DIST / "index.html").exists(),
        f"{WEB_DIST} is not built (run: cd web && npm ci && npm run build, or make test)",
    )
    return WEB_DIST


ServerFactory = Callable[..., DiquisServer]


@pytest.fixture
def diquis_server(web_dist: Path, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start ``diquis serve`` with extra ``DIQUIS_*`` settings and a super admin."""
    servers: list[DiquisServer] = []

    def start(concurrency: int = 10, **env: str) -> DiquisServer:
        data_dir = tmp_path / f"data-{len(servers)}"
        data_dir.mkdir()
        server = DiquisServer(data_dir, free_port(), env, concurrency)
        servers.append(server)
        server.cli("migrate")
        server.cli("create-superadmin", "--email", SUPERADMIN_EMAIL,
                   "--password", SUPERADMIN_PASSWORD)  # fmt: skip
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
