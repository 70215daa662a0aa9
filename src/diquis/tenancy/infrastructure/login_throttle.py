"""Login throttling: failure counters in the catalog, so every web process sees them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection

from .db import Catalog, login_failures


@dataclass(frozen=True)
class ThrottleRule:
    """After ``threshold`` failures within ``window`` seconds, refuse for a doubling time."""

    prefix: str
    threshold: int
    window: float
    first_delay: float = 1.0
    max_delay: float = 300.0

    def key(self, value: str) -> str:
        """The counter's key for ``value`` (an e-mail address or a client address)."""
        return f"{self.prefix}:{value}"[:300]

    def delay(self, failures: int) -> float:
        """Seconds refused after the ``failures``-th failure: 0, then 1 s, 2 s, 4 s … 300 s."""
        over = failures - self.threshold
        if over < 0:
            return 0.0
        return float(min(self.max_delay, self.first_delay * 2 ** min(over, 32)))


#: per e-mail address, whether or not an account has it
PER_ACCOUNT = ThrottleRule("email", threshold=5, window=15 * 60)
#: per client address, across every e-mail it tries
PER_CLIENT = ThrottleRule("client", threshold=30, window=10 * 60)


class LoginThrottle:
    """Counts failed logins per key and says how long a key must wait."""

    def __init__(self, catalog: Catalog, clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self.clock = clock

    async def retry_after(self, keys: Sequence[str]) -> int:
        """Whole seconds until every key may try again (0: they may now)."""
        now = self.clock()
        until = await self.catalog.run(
            lambda c: c.execute(
                select(login_failures.c.blocked_until).where(login_failures.c.key.in_(keys))
            ).scalars().all()
        )  # fmt: skip
        wait = max((u - now for u in until), default=0.0)
        return math.ceil(wait) if wait > 0 else 0

    async def failed(self, hits: Sequence[tuple[ThrottleRule, str]]) -> None:
        """Count one failure for each (rule, key); start or lengthen their refusal."""
        now = self.clock()

        def write(conn: Connection) -> None:
            for rule, key in hits:
                conn.execute(
                    text(
                        "INSERT INTO login_failures (key, failures, window_start, blocked_until)"
                        " VALUES (:k, 0, :now, 0) ON CONFLICT (key) DO NOTHING"
                    ),
                    {"k": key, "now": now},
                )
                row = conn.execute(
                    select(login_failures.c.failures, login_failures.c.window_start)
                    .where(login_failures.c.key == key)
                    .with_for_update()
                ).one()  # fmt: skip
                failures, start = int(row[0]), float(row[1])
                if now - start > rule.window:
                    failures, start = 0, now
                failures += 1
                delay = rule.delay(failures)
                conn.execute(
                    update(login_failures)
                    .where(login_failures.c.key == key)
                    .values(
                        failures=failures, window_start=start,
                        blocked_until=now + delay if delay else 0,
                    )
                )  # fmt: skip

        await self.catalog.run(write)

    async def succeeded(self, key: str) -> None:
        """Forget ``key``'s failures (a correct password for that account)."""
        await self.catalog.run(
            lambda c: c.execute(delete(login_failures).where(login_failures.c.key == key))
        )
