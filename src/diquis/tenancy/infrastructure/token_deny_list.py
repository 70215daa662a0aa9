"""Revoked access tokens (by ``jti``), kept in the catalog until they would have expired."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.engine import Connection

from .db import Catalog, revoked_tokens

# built once: a statement made per call costs SQLAlchemy a new cache key each time
_REVOKED = select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == bindparam("jti"))


class TokenDenyList:
    """What a logout writes and every authenticated request reads, in every process."""

    def __init__(self, catalog: Catalog, clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self.clock = clock

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Refuse the token ``jti`` from now until ``expires_at`` (epoch seconds)."""
        now = self.clock()

        def write(conn: Connection) -> None:
            # the expired entries go as new ones come: the table holds live tokens only
            conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < now))
            conn.execute(
                text(
                    "INSERT INTO revoked_tokens (jti, expires_at) VALUES (:jti, :exp)"
                    " ON CONFLICT (jti) DO NOTHING"
                ),
                {"jti": jti[:64], "exp": expires_at},
            )

        await self.catalog.run(write)

    async def is_revoked(self, jti: str | None) -> bool:
        """Whether the token ``jti`` was revoked (a token without one counts as revoked)."""
        if not jti:
            return True
        row = await self.catalog.read(lambda c: c.execute(_REVOKED, {"jti": jti[:64]}).first())
        return row is not None
