"""The built wheel carries the web app: install it in a fresh venv and load ``/`` in Chromium."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.support import processes
from tests.support.net import free_port

from .conftest import REPO, SECRET, DiquisServer


class WheelServer(DiquisServer):
    """``diquis serve`` from a venv that has only the wheel, run outside the repository."""

    bin_dir: Path = Path()

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("DIQUIS_WEB_DIR")  # the packaged copy must be found on its own
        env["DIQUIS_SECRET_KEY"] = SECRET
        return env

    def start(self, timeout: float = 60) -> None:
        """Start the installed console script (from a folder with no web/dist)."""
        self.starts += 1
        self.popen = processes.spawn(
            [str(self.bin_dir / "diquis"), "serve", "--port", str(self.port)],
            log=self.log, append=True, env=self.env(), cwd=self.data_dir,
        )  # fmt: skip
        processes.wait_ready(
            self.popen, lambda: processes.answers_readyz(self.url),
            what="diquis serve (wheel)", output=self.output, timeout=timeout,
        )  # fmt: skip


def test_the_wheel_serves_the_web_app(web_dist: Path, tmp_path: Path, browser: Browser) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True, timeout=300,
    )  # fmt: skip
    [wheel] = wheels.glob("diquis-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    # the app's extra, at the versions the lock pins (what `pip install 'diquis[app]'` gets)
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{wheel}[app]",
         "-c", str(REPO / "requirements-dev.lock")],
        check=True, timeout=540,
    )  # fmt: skip
    data = tmp_path / "data"
    data.mkdir()
    server = WheelServer(data, free_port())
    server.bin_dir = bin_dir
    done = subprocess.run(
        [str(bin_dir / "diquis"), "migrate"], env=server.env(), cwd=data,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    server.start()
    try:
        page = browser.new_page()
        page.goto(server.url + "/")
        expect(page.get_by_role("heading", name="Log in", exact=True)).to_be_visible()
        assert "diquis" in page.title().lower()
        page.close()
    finally:
        server.stop()
