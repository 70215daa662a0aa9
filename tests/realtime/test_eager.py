"""start_eagerly: runs a coroutine in the caller's turn, a task only when it must wait."""

from __future__ import annotations

import asyncio

import pytest

from diquis.realtime.eager import start_eagerly


async def test_a_coroutine_that_never_waits_runs_at_once_without_a_task() -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append("done")

    assert start_eagerly(work()) is None
    assert ran == ["done"]


async def test_a_coroutine_that_waits_is_finished_by_a_task_with_results_and_errors() -> None:
    seen: list[object] = []
    loop = asyncio.get_running_loop()
    first: asyncio.Future[int] = loop.create_future()
    second: asyncio.Future[int] = loop.create_future()

    async def work() -> None:
        seen.append("started")
        seen.append(await first)
        try:
            await second
        except ValueError as exc:
            seen.append(str(exc))
        await asyncio.sleep(0)
        seen.append("end")

    task = start_eagerly(work())
    assert task is not None and seen == ["started"]
    await asyncio.sleep(0)  # the task now waits on `first`
    first.set_result(7)
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # and now on `second`
    second.set_exception(ValueError("boom"))
    await asyncio.wait_for(task, 1)
    assert seen == ["started", 7, "boom", "end"]


async def test_cancelling_the_task_cancels_the_coroutine() -> None:
    cleaned: list[bool] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def work() -> None:
        try:
            await never
        finally:
            cleaned.append(True)

    task = start_eagerly(work())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]
