"""An ASGI app under uvicorn on its own event loop in a thread, on a free port."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import uvicorn

from tests.support.net import free_port, wait_for_port


class ThreadedServer:
    """``with ThreadedServer(app) as server:`` serves ``app`` at ``server.base`` until the end
    of the block. ``config`` goes to :class:`uvicorn.Config` (``log_level`` is "warning")."""

    def __init__(self, app: Any, join_timeout: float = 10.0, **config: Any) -> None:
        self.port = free_port()
        config.setdefault("log_level", "warning")
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, **config)
        )
        self.join_timeout = join_timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=lambda: self.loop.run_until_complete(self.server.serve()), daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve in the thread; return once the port accepts connections."""
        self.thread.start()
        wait_for_port(self.port)

    def stop(self) -> None:
        """Ask uvicorn to exit (lifespan shutdown runs) and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout=self.join_timeout)
        self.loop.close()

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
