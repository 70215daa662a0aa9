"""A plain process with no HTTP: sends to a user through a backplane, then exits.

Usage: send.py BACKPLANE_URL USER MESSAGE
"""

from __future__ import annotations

import asyncio
import sys

from diquis.realtime import backplane_from_url, publisher_context


async def main(url: str, user: str, message: str) -> None:
    backplane = backplane_from_url(url)
    try:
        hub = publisher_context(backplane, "notifications")
        await hub.clients.user(user).send("ReceiveNotification", "Success", message)
    finally:
        await backplane.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
