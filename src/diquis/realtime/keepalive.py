"""One sweeper for all connections: pings, acks, timeouts, token expiry, leftovers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from .connection import HubConnection
from .options import HubOptions
from .protocol.messages import AckMessage

log = logging.getLogger(__name__)

CLIENT_TIMEOUT = "Server timeout elapsed without receiving a message from the client."
HANDSHAKE_TIMEOUT = "Handshake was not completed in time."
TOKEN_EXPIRED = "Unauthorized: token expired"
RECONNECT_WINDOW = "The client did not reconnect in time."


async def sweep(
    connections: Iterable[HubConnection],
    options: HubOptions,
    forget: Callable[[HubConnection], None],
) -> None:
    """Look at every connection once."""
    now = options.clock()
    wall = options.wall_clock() if options.close_on_token_expiry else 0.0
    for connection in list(connections):
        if connection.closed:
            # Long-polling connections linger so the client's next poll can learn of the close.
            if now - connection.closed_at > options.client_timeout:
                forget(connection)
        elif not connection.is_open:
            if now - connection.created_at > options.handshake_timeout:
                await connection.close(HANDSHAKE_TIMEOUT)
        elif (
            wall
            and connection.identity.expires_at is not None
            and wall >= connection.identity.expires_at
        ):
            log.info("closing %s: its token expired", connection.id)
            await connection.close(TOKEN_EXPIRED)
        elif connection.detached_at is not None:
            # Between a dropped transport and a stateful reconnect: nothing to send to.
            if now - connection.detached_at > options.stateful_reconnect_window:
                await connection.close(RECONNECT_WINDOW)
                forget(connection)
        elif now - connection.last_received > options.client_timeout:
            await connection.close(CLIENT_TIMEOUT)
        elif (
            now - connection.last_sent >= options.keep_alive_interval
            and not connection.has_outgoing()
        ):
            connection.send_ping()
        if (
            connection.session.replay is not None
            and connection.is_open
            and connection.detached_at is None
        ):
            ack = connection.session.replay.ack_due()
            if ack is not None:
                # Acks are not tracked; one stale by a tick is harmless (the client resends).
                connection.send_message(AckMessage(ack))


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
            log.exception("keep-alive sweep failed")
