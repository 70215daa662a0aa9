"""Keeps access tokens out of uvicorn's log lines and its noise about refused WebSockets.

Browsers can only send a WebSocket's or EventSource's token in the query string
(`access_token=`), which uvicorn writes into its access and WebSocket log lines. And when
the hub refuses a WebSocket with an HTTP status, uvicorn's sans-IO WebSocket protocol logs
"ASGI callable returned without completing handshake." at ERROR: the hub already logged the
refusal (once, at INFO, without the query), so that line and uvicorn's own one go.
"""

from __future__ import annotations

import logging
import re

from .transports.websocket import refused_here

_TOKEN = re.compile(r"(access_token=)[^&\s\"]+")
_NO_HANDSHAKE = "ASGI callable returned without completing handshake."
_WEBSOCKET_LINE = '%s - "WebSocket %s" %d'
LOGGERS = ("uvicorn.error", "uvicorn.access")


def redact(text: str) -> str:
    """`text` with every access_token value replaced by `***`."""
    return _TOKEN.sub(r"\1***", text)


class HubLogFilter(logging.Filter):
    """Redacts access tokens; drops uvicorn's lines about WebSockets the hub refused."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep (and clean) or drop one record."""
        if refused_here.get() and record.msg in (_NO_HANDSHAKE, _WEBSOCKET_LINE):
            return False
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "access_token=" in a for a in record.args
        ):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and "access_token=" in record.msg:
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Attach the filter to uvicorn's loggers (once per process)."""
    for name in LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, HubLogFilter) for f in target.filters):
            target.addFilter(HubLogFilter())
