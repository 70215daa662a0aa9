"""A tour of the job engine on embedded SQLite: jobs run, retry, continue, recur, and a
batch of imports (fair between two tenants) reports its progress live.

Run with ``make demo``. It starts a job server in this process, enqueues a few kinds of
jobs and prints every state change from the engine's cross-process feed as it happens.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from diquis.jobs import BatchState, JobEngine, RetryPolicy, State, current_job

DATA = Path(".diquis")
DATA.mkdir(exist_ok=True)
(DATA / "demo-jobs.db").unlink(missing_ok=True)
engine = JobEngine(f"sqlite:///{DATA}/demo-jobs.db")
attempts: dict[str, int] = {}


@engine.job
async def create_tenant_database(tenant: str) -> str:
    """Pretend to provision a tenant's database."""
    await asyncio.sleep(random.uniform(0.3, 1.0))
    return f"db_{tenant}"


@engine.job(retry=RetryPolicy(attempts=3, delays=[1, 2, 4]))
async def send_welcome_email(tenant: str) -> None:
    """Fails twice (a flaky SMTP server), then succeeds on the third try."""
    attempts[tenant] = attempts.get(tenant, 0) + 1
    if attempts[tenant] < 3:
        raise ConnectionError(f"SMTP server refused the connection (try {attempts[tenant]})")


@engine.job(partition="tenant:{tenant}")
async def import_rows(tenant: str, rows: int) -> None:
    """Imports ``rows`` rows, reporting progress and a log line now and then."""
    job = current_job()
    for row in range(1, rows + 1):
        await asyncio.sleep(0.01)
        job.report_progress(100 * row / rows, f"row {row} of {rows}")
        if row % 25 == 0:
            job.log(f"{tenant}: imported {row} rows")


@engine.job
def nightly_report() -> str:
    """A sync job (runs in a thread), scheduled by cron."""
    return "report written"


async def main() -> None:
    names: dict[int, str] = {}

    async def watch() -> None:
        async for change in engine.state_changes(poll_interval=0.05):
            target = names.get(change.job_id)
            if target is None:
                target = names[change.job_id] = engine.get(change.job_id).target.split(".")[-1]
            print(f"  job {change.job_id:>3} {target:<24} -> {change.state.value}")

    async with engine.server(concurrency=4, scheduler_interval=0.5):
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        print("Enqueueing: two tenant databases, a welcome e-mail that fails twice,")
        print("a job delayed by 3 s, and a recurring job every 5 seconds.\n")
        first = engine.enqueue(create_tenant_database, "acme", tags=["tenant:acme"])
        engine.continue_with(first, send_welcome_email, "acme", tags=["tenant:acme"])
        engine.enqueue(create_tenant_database, "globex", tags=["tenant:globex"])
        engine.schedule(create_tenant_database, "initech", delay=3)
        engine.recurring.add_or_update("nightly-report", nightly_report, "*/5 * * * * *")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            counts = engine.monitoring.state_counts()
            if counts[State.SUCCEEDED] >= 6 and not counts[State.SCHEDULED]:
                break
        engine.recurring.remove("nightly-report")
        await asyncio.sleep(0.3)
        watcher.cancel()
        print("\nA batch: 8 imports of two tenants created at once, then a continuation;")
        print("progress of the running imports, live:\n")
        with engine.batch() as batch:
            for i in range(8):
                batch.enqueue(import_rows, "acme" if i % 2 else "globex", 50 + 10 * i)
        engine.continue_batch_with(batch.id, nightly_report)
        while (b := engine.get_batch(batch.id)).state is BatchState.STARTED:
            running = engine.monitoring.list_jobs(state=State.PROCESSING)
            bars = "  ".join(f"#{j.id} {j.progress or 0:5.1f}%" for j in running)
            print(f"\r  batch {b.id}: {b.progress:5.1f}% done   {bars:<60}", end="", flush=True)
            await asyncio.sleep(0.2)
        print(f"\n  batch {batch.id}: {engine.get_batch(batch.id).state.value}")
        await asyncio.sleep(0.5)
    counts = engine.monitoring.state_counts()
    print("\nDone:", ", ".join(f"{s.value} {n}" for s, n in counts.items() if n))
    print(f"The jobs are in {DATA}/demo-jobs.db; `make test` runs the whole suite.")
    last = engine.monitoring.list_jobs(target=import_rows.__module__ + ".import_rows", limit=1)
    if last:
        print("The log of the last import:", *(x.line for x in last[0].log), sep="\n  ")


if __name__ == "__main__":
    asyncio.run(main())
