"""One sweeper for all connections: pings, client timeouts, handshake timeouts, leftovers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from diquis.realtime.connection import HubConnection
from diquis.realtime.options import HubOptions

logger = logging.getLogger("diquis.realtime.keepalive")

CLIENT_TIMEOUT = "Server timeout elapsed without receiving a message from the client."
HANDSHAKE_TIMEOUT = "Handshake was not completed in time."


async def sweep(
    connections: Iterable[HubConnection],
    options: HubOptions,
    forget: Callable[[HubConnection], None],
) -> None:
    """Look at every connection once."""
    now = options.clock()
    for connection in list(connections):
        if connection.closed:
            # Long-polling connections linger so the client's next poll can learn of the close.
            if now - connection.closed_at > options.client_timeout:
                forget(connection)
        elif not connection.is_open:
            if now - connection.created_at > options.handshake_timeout:
                await connection.close(HANDSHAKE_TIMEOUT)
        elif now - connection.last_received > options.client_timeout:
            await connection.close(CLIENT_TIMEOUT)
        elif (
            now - connection.last_sent >= options.keep_alive_interval
            and not connection.has_outgoing()
        ):
            connection.send_ping()


async def run_sweeper(
    connections: Callable[[], Iterable[HubConnection]],
    options: HubOptions,
    forget: Callable[[HubConnection], None],
) -> None:
    """Sweep forever, every `options.tick_interval` seconds."""
    while True:
        await asyncio.sleep(options.tick_interval)
        try:
            await sweep(connections(), options, forget)
        except Exception:
            logger.exception("keep-alive sweep failed")
