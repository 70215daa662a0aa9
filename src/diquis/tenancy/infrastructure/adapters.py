"""Small adapters: the job engine as BackgroundJobService, injected faults, rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from ...jobs import InvalidStateError, JobEngine, JobNotFoundError
from ..application.ports import JobStatus
from ..application.provision import ProvisioningError
from ..domain import ConflictError
from .db import Catalog, SqlTransaction

#: the reason a job is deleted with when its tenant is deleted (no repair follows)
DELETED_WITH_TENANT = "Deleted with its tenant"


class EngineJobService:
    """BackgroundJobService over diquis.jobs; enqueues inside the catalog transaction."""

    def __init__(self, engine: JobEngine, catalog: Catalog) -> None:
        self.engine = engine
        self.catalog = catalog

    async def enqueue(
        self,
        method: Callable[..., Any],
        *args: Any,
        tags: tuple[str, ...] = (),
        tx: object | None = None,
    ) -> str:
        if not isinstance(tx, SqlTransaction):
            return str(await self.engine.aenqueue(method, *args, tags=list(tags)))
        # on the transaction's own connection and in the catalog's threads (the caller
        # holds a catalog permit for it), so the job exists only if the tenant row does
        job_id = await self.catalog.in_tx(
            tx, lambda conn: self.engine.enqueue(method, *args, tags=list(tags), connection=conn)
        )
        self.engine.poke()  # committed by the caller right after; wake local servers
        return str(job_id)

    async def status(self, job_id: str) -> JobStatus | None:
        try:
            job = await self.engine.aget(int(job_id))
        except (JobNotFoundError, ValueError):
            return None
        return JobStatus(state=job.state.value, runs=job.attempt, last_error=job.error)

    async def delete(self, job_id: str) -> None:
        # gone already, or in a state that cannot be deleted: either way nothing will run
        with contextlib.suppress(JobNotFoundError, InvalidStateError):
            await self.engine.adelete(int(job_id), DELETED_WITH_TENANT)

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
