"""The uvicorn configuration Diquis ships: what `diquis serve` runs and bench/hub.py measures.

The hub's numbers in the README come from this function, so they are what users get:

* **permessage-deflate off** (``DIQUIS_WS_DEFLATE=1`` turns it on). uvicorn offers it by
  default; each connection that takes it keeps two zlib streams (~40 KiB) and every
  message is compressed once per connection, where the hub otherwise writes the same
  frame to every socket. SignalR's JSON frames are small; compression rarely pays.
* **the sans-IO WebSocket implementation** (uvicorn's ``websockets-sansio``: one protocol
  object per socket, no reader task, no asyncio streams) with the hub's takeover
  (``diquis.wsprotocol``): once the hub accepted a socket it serves it without ASGI, writing
  one pre-built frame per broadcast to every socket; plain ASGI WebSockets (``wsproto`` when
  ``websockets`` is absent) on a uvicorn too old for the takeover.
* **no WebSocket-level pings**: the hub already pings every connection (SignalR's
  keep-alive) and closes silent ones (its client timeout); uvicorn's own ping would add a
  timer per connection and a second ping stream for nothing.
* **uvloop and httptools** when installed (the ``[app]`` extra brings them).
* a listen backlog of 4,096, so a burst of reconnecting clients is not refused.
* **a main loop that ticks once a second** (:class:`QuietServer`), not ten times: an idle
  server then wakes once a second for uvicorn, with the ``Date`` header still refreshed on
  every whole second and a stop (a signal, ``should_exit``) still acted on at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
from typing import Any

import uvicorn

BACKLOG = 4096
STARTUP_FAILURE = 3  # uvicorn.run's exit status when the server could not start


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _websocket_protocol() -> type[Any] | str:
    if not _installed("websockets"):
        return "wsproto"
    try:
        from .wsprotocol import DirectWebSocketProtocol
    except ImportError:  # a uvicorn without the sans-IO protocol: plain ASGI WebSockets
        return "websockets"
    return DirectWebSocketProtocol


def uvicorn_options(*, ws_deflate: bool = False) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the event loop, HTTP and WebSocket layers."""
    return {
        "loop": "uvloop" if _installed("uvloop") else "asyncio",
        "http": "httptools" if _installed("httptools") else "h11",
        "ws": _websocket_protocol(),
        "ws_per_message_deflate": ws_deflate,
        "ws_ping_interval": None,
        "ws_ping_timeout": None,
        "backlog": BACKLOG,
    }


def uvicorn_config(
    app: Any, *, host: str, port: int, ws_deflate: bool = False, **extra: Any
) -> uvicorn.Config:
    """The configuration to serve ``app`` with; ``extra`` adds logging, proxy and shutdown options.

    ``extra`` may not override the options of :func:`uvicorn_options` (a benchmark that did
    would no longer measure what ships).
    """
    options = uvicorn_options(ws_deflate=ws_deflate)
    clash = sorted(set(options) & set(extra))
    if clash:
        raise TypeError(f"uvicorn_config fixes {', '.join(clash)}; do not pass them")
    return uvicorn.Config(app, host=host, port=port, **options, **extra)


class QuietServer(uvicorn.Server):
    """uvicorn's server whose main loop sleeps to the next whole second, not for 0.1 s.

    uvicorn's loop wakes ten times a second to refresh the ``Date`` header (once in ten
    ticks) and to look at ``should_exit``. Here it sleeps until the wall clock's next whole
    second — the header changes exactly when its text would — and setting ``should_exit``
    (uvicorn's signal handler does, and so may tests and embedders) wakes it at once, so a
    graceful shutdown starts as soon as it did. ``limit_max_requests`` is looked at once a
    second.
    """

    _exit_requested = False
    _tick: asyncio.Future[None] | None = None

    @property
    def should_exit(self) -> bool:
        return self._exit_requested

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit_requested = value
        tick = self._tick
        if value and tick is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                tick.get_loop().call_soon_threadsafe(_wake, tick)

    async def main_loop(self) -> None:
        loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            self._tick = tick = loop.create_future()
            if self._exit_requested:  # asked between on_tick and here
                _wake(tick)
            timer = loop.call_later(1.0 - time.time() % 1.0, _wake, tick)
            try:
                await tick
            finally:
                timer.cancel()
                self._tick = None
            counter = (counter + 10) % 864000  # on_tick refreshes the header when % 10 == 0
            should_exit = await self.on_tick(counter)


def _wake(tick: asyncio.Future[None]) -> None:
    if not tick.done():
        tick.set_result(None)


def serve(config: uvicorn.Config) -> None:
    """Run uvicorn with ``config`` in this process until it is told to stop.

    As ``uvicorn.run`` does: Ctrl-C ends it quietly; a server that never started (the port
    taken, say) exits with uvicorn's startup-failure status.
    """
    server = QuietServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
