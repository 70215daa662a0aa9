"""PostgreSQL LISTEN, read by the event loop itself: a notification wakes us, nothing else.

psycopg's ``AsyncConnection.notifies()`` wakes every 100 ms to look for interrupts even
when nothing arrives, for as long as it runs — ten wake-ups a second, per listening
connection, for ever. Here the loop watches the socket (``add_reader``) and libpq is
asked for notifications only when it is readable, so an idle listener costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

import psycopg
from psycopg import sql


async def notifications(
    url: str, channels: Sequence[str], on_listening: Callable[[], None] | None = None
) -> AsyncIterator[psycopg.Notify]:
    """Every notification on ``channels``, in order, until the connection is lost (raises).

    ``on_listening`` is called once every ``LISTEN`` is in place: whatever was sent
    before it was not heard, so that is the moment to look at the tables once.
    """
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        early: deque[psycopg.Notify] = deque()
        conn.add_notify_handler(early.append)  # any received while LISTEN itself runs
        for channel in channels:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        conn.remove_notify_handler(early.append)
        if on_listening is not None:
            on_listening()
        while early:
            yield early.popleft()
        loop = asyncio.get_running_loop()
        pgconn = conn.pgconn
        fd, encoding = pgconn.socket, conn.info.encoding
        waiter: asyncio.Future[None] | None = None

        def readable() -> None:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        loop.add_reader(fd, readable)
        try:
            while True:
                pgconn.consume_input()  # raises OperationalError once the connection is gone
                while (note := pgconn.notifies()) is not None:
                    channel, payload = note.relname.decode(encoding), note.extra.decode(encoding)
                    yield psycopg.Notify(channel, payload, note.be_pid)
                waiter = loop.create_future()
                await waiter
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)


__all__ = ["notifications"]
