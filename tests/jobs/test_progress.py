"""Progress and log lines from running jobs: stored coalesced, bounded, on every store."""

from __future__ import annotations

import asyncio

import pytest

from diquis.jobs import JobArgumentError, JobEngine, current_job
from diquis.jobs.context import LOG_LINES


async def steps(n: int) -> None:
    job = current_job()
    for i in range(n):
        job.report_progress(100 * (i + 1) / n, f"step {i + 1} of {n}")
        job.log(f"did {i + 1}")


def sync_steps(n: int) -> None:
    job = current_job()
    for i in range(n):
        job.log(f"line {i}")
    job.report_progress(50, "half way")


async def test_the_last_report_and_the_last_lines_are_stored(engine: JobEngine) -> None:
    engine.job(steps)
    engine.job(sync_steps)
    a = engine.enqueue(steps, 1000)
    b = engine.enqueue(sync_steps, LOG_LINES + 50)
    await engine.drain()
    job = engine.get(a)
    assert job.progress == 100 and job.progress_message == "step 1000 of 1000"
    assert len(job.log) == LOG_LINES and job.log[-1].line == "did 1000"
    other = engine.get(b)
    assert other.progress == 50 and other.progress_message == "half way"
    assert [x.line for x in other.log][:2] == ["line 50", "line 51"]
    listed = engine.monitoring.list_jobs()
    assert {j.id: j.progress for j in listed} == {a: 100, b: 50}


def test_bad_percentages_are_refused() -> None:
    from diquis.jobs import JobContext

    ctx = JobContext(1, "t", "default", 1, 0, "s")
    for bad in (-1, 101, float("nan"), "50", True):
        with pytest.raises(JobArgumentError):
            ctx.report_progress(bad)  # type: ignore[arg-type]
    assert ctx.take_progress() is None
    ctx.report_progress(10)
    ctx.report_progress(20, "x")
    update = ctx.take_progress()
    assert update is not None and update.percent == 20 and update.message == "x"
    assert ctx.take_progress() is None  # coalesced: one write for many reports


async def test_a_running_job_shows_progress_while_it_runs(live_engine: JobEngine) -> None:
    engine = live_engine
    gate = asyncio.Event()

    @engine.job
    async def long_one() -> None:
        current_job().report_progress(25, "copying")
        current_job().log("started copying")
        await gate.wait()

    job_id = engine.enqueue(long_one)
    async with engine.server(concurrency=2, poll_interval=0.05):
        for _ in range(100):
            await asyncio.sleep(0.05)
            if engine.get(job_id).progress == 25:
                break
        job = engine.get(job_id)
        assert job.progress == 25 and job.progress_message == "copying"
        assert [x.line for x in job.log] == ["started copying"]
        gate.set()
