"""Small adapters: the job engine as BackgroundJobService, injected faults, rate limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from ...jobs import InvalidStateError, JobEngine
from ..application.provision import ProvisioningError
from ..domain import ConflictError
from .db import Catalog, SqlTransaction


class EngineJobService:
    """BackgroundJobService over diquis.jobs; enqueues inside the catalog transaction."""

    def __init__(self, engine: JobEngine) -> None:
        self.engine = engine

    async def enqueue(
        self,
        method: Callable[..., Any],
        *args: Any,
        tags: tuple[str, ...] = (),
        tx: object | None = None,
    ) -> str:
        connection = tx.connection if isinstance(tx, SqlTransaction) else None
        job_id = await asyncio.to_thread(
            self.engine.enqueue, method, *args, tags=list(tags), connection=connection
        )
        if connection is not None:
            self.engine.poke()  # committed by the caller right after; wake local servers
        return str(job_id)

    async def requeue(self, job_id: str) -> None:
        try:
            await self.engine.arequeue(int(job_id), "Retried from the tenants API")
        except InvalidStateError as exc:
            raise ConflictError(f"provisioning job {job_id} is queued or running already") from exc


class EnvFaults:
    """FaultInjector from DIQUIS_FAULTS / DIQUIS_DEMO_STEP_DELAY (dev and tests only).

    Counts are per process: ``migrate:2`` fails the first two migrate steps this process
    runs.
    """

    def __init__(self, faults: dict[str, int], delay: float) -> None:
        self.remaining = dict(faults)
        self.delay = delay

    async def step(self, name: str) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.remaining.get(name, 0) > 0:
            self.remaining[name] -= 1
            raise ProvisioningError(f"injected fault in step {name}")


class RateLimiter:
    """Fixed-window counters in the catalog, so every web process shares one limit."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def allow(self, key: str, limit: int, window: int) -> bool:
        """Count one hit on ``key``; whether it is within ``limit`` per ``window`` seconds."""
        start = int(time.time()) // window * window
        count = await self.catalog.run(
            lambda conn: conn.execute(
                text(
                    "INSERT INTO rate_limits (key, window_start, count) VALUES (:k, :w, 1)"
                    " ON CONFLICT (key, window_start) DO UPDATE"
                    " SET count = rate_limits.count + 1 RETURNING count"
                ),
                {"k": key, "w": start},
            ).scalar_one()
        )
        return int(count) <= limit
