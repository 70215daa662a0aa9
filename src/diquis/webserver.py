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
"""

from __future__ import annotations

import contextlib
import importlib.util
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


def serve(config: uvicorn.Config) -> None:
    """Run uvicorn with ``config`` in this process until it is told to stop.

    As ``uvicorn.run`` does: Ctrl-C ends it quietly; a server that never started (the port
    taken, say) exits with uvicorn's startup-failure status.
    """
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
