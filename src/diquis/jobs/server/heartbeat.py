"""The server's heartbeat, in its own thread so a busy or blocked loop never looks dead.

Each beat reports the runs in progress; the storage answers whether this server still
counts as alive (if not, it registers again) and which runs it no longer owns (deleted
or taken over), which are then cancelled on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import JobEngine

log = logging.getLogger(__name__)
Run = tuple[int, int]


class Heartbeat:
    """Beats every ``interval`` seconds from a daemon thread while started."""

    def __init__(
        self,
        engine: JobEngine,
        server_id: str,
        interval: float,
        *,
        runs: Callable[[], list[Run]],
        register: Callable[[], None],
        on_lost: Callable[[list[Run]], None],
    ) -> None:
        self.engine = engine
        self.server_id = server_id
        self.interval = interval
        self._runs = runs
        self._register = register
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat_until_stopped,
            name=f"diquis-heartbeat-{self.server_id}",
            daemon=True,
        )
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
            self._thread = None

    def beat(self) -> None:
        """One heartbeat (from the heartbeat thread)."""
        alive, lost = self.engine.storage.heartbeat(self.server_id, self.engine.now(), self._runs())
        if not alive:
            log.warning("server %s was declared dead; registering again", self.server_id)
            self._register()
        if lost and self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_lost, lost)

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:
                log.exception("heartbeat of server %s failed", self.server_id)
