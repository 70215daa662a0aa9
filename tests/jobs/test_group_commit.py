"""Group commit: concurrent aenqueue/aschedule/acontinue_with share commits, each caller
still gets its own result (or its own error), and a failed commit fails the whole batch."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from diquis.jobs import JobEngine, JobNotFoundError, State
from diquis.jobs.enqueuer import MIN_SPLIT, GroupCommitter, Result
from diquis.jobs.model import NewJob
from tests.support.wait import eventually

from . import targets


class CommitFailed(Exception):
    """What the patched commit raises."""


def record_batches(engine: JobEngine) -> list[int]:
    """Patch the engine's storage to note the size of every group commit it makes."""
    storage = engine.storage
    sizes: list[int] = []
    now_real, later_real = storage.create_jobs_nowait, storage.acreate_jobs

    def create_jobs_nowait(jobs: Sequence[NewJob], now: float) -> list[Any] | None:
        results = now_real(jobs, now)
        if results is not None:  # None: not written here, the async path writes it
            sizes.append(len(jobs))
        return results

    async def acreate_jobs(jobs: Sequence[NewJob], now: float) -> list[Any]:
        sizes.append(len(jobs))
        return await later_real(jobs, now)

    storage.create_jobs_nowait = create_jobs_nowait  # type: ignore[method-assign]
    storage.acreate_jobs = acreate_jobs  # type: ignore[method-assign]
    return sizes


def stored(engine: JobEngine, url: str, job_id: int) -> State:
    """The job's state as a fresh engine on the same store reads it (memory: this one)."""
    if url.startswith("memory"):
        return engine.get(job_id).state
    other = JobEngine(url, migrate=False)
    try:
        return other.get(job_id).state
    finally:
        other.close()


async def test_concurrent_callers_share_one_commit_and_are_durable(
    engine: JobEngine, storage_url: str
) -> None:
    targets.register_all(engine)
    sizes = record_batches(engine)
    ids = await asyncio.gather(*(engine.aenqueue(targets.add, i, i) for i in range(50)))
    # one commit; a store that writes two batches at once (PostgreSQL) writes two halves
    assert sizes == ([50] if engine.storage.group_writers == 1 else [25, 25])
    assert len(set(ids)) == 50
    for i, job_id in enumerate(ids):
        assert stored(engine, storage_url, job_id) is State.ENQUEUED
        job = engine.get(job_id)
        assert job.args == [i, i] and [h.state for h in job.history] == [State.ENQUEUED]
    # a lone caller waits for nobody: its batch is its own job
    sizes.clear()
    await engine.aenqueue(targets.add, 1, 1)
    assert sizes == [1]


async def test_schedules_continuations_and_tags_in_one_batch(engine: JobEngine) -> None:
    targets.register_all(engine)
    parent = engine.enqueue(targets.add, 0, 0)
    sizes = record_batches(engine)
    plain, later, child, tagged = await asyncio.gather(
        engine.aenqueue(targets.add, 1, 2),
        engine.aschedule(targets.add, 3, 4, delay=60),
        engine.acontinue_with(parent, targets.add, 5, 6),
        engine.aenqueue(targets.add, 7, 8, tags=["t:a", "t:b"]),
    )
    assert sizes == [4]
    assert engine.get(plain).state is State.ENQUEUED
    assert engine.get(later).state is State.SCHEDULED
    assert engine.get(child).state is State.AWAITING
    assert engine.get(tagged).tags == ("t:a", "t:b")
    assert engine.get(plain).tags == ()


# text the batch statements send as arrays (PostgreSQL: binary array parameters), with
# what a text array literal would have to quote or escape
ODD_TEXT = ["a,b", 'say "hi"', "back\\slash", "{braces}", "NULL", "", "é ✓", "  spaced  "]


async def test_odd_text_goes_through_the_batch_statements_unchanged(engine: JobEngine) -> None:
    targets.register_all(engine)
    ids = await asyncio.gather(
        *(engine.aenqueue(targets.boom, text, tags=[f"t:{text}"]) for text in ODD_TEXT)
    )
    assert await engine.drain() == len(ODD_TEXT)  # each fails: a retry is scheduled
    for job_id, text in zip(ids, ODD_TEXT, strict=True):
        job = engine.get(job_id)
        assert job.args == [text]
        assert job.tags == (f"t:{text}".strip(),)  # tags are trimmed on the way in
        assert job.state is State.SCHEDULED  # the finish wrote outcome and history rows
        assert job.error is not None and job.error.endswith(text)
        assert (job.history[-1].reason or "").endswith(text)


async def test_a_unique_key_clash_answers_only_its_caller(engine: JobEngine) -> None:
    targets.register_all(engine)
    live = engine.enqueue(targets.add, 0, 0, unique_key="taken")
    sizes = record_batches(engine)
    results = await asyncio.gather(
        *(engine.aenqueue(targets.add, i, i) for i in range(5)),
        engine.aenqueue(targets.add, 9, 9, unique_key="taken"),
        engine.aenqueue(targets.add, 8, 8, unique_key="fresh"),
        engine.aenqueue(targets.add, 7, 7, unique_key="fresh"),
    )
    assert sizes == [8]
    plain, clash, fresh, again = results[:5], results[5], results[6], results[7]
    assert clash == live
    assert again == fresh and fresh not in plain and live not in plain
    assert len(set(plain)) == 5
    assert engine.get(fresh).args == [8, 8]
    assert all(engine.get(j).state is State.ENQUEUED for j in plain)


async def test_an_invalid_job_fails_only_its_caller(engine: JobEngine, storage_url: str) -> None:
    targets.register_all(engine)
    sizes = record_batches(engine)
    results = await asyncio.gather(
        *(engine.aenqueue(targets.add, i, i) for i in range(5)),
        engine.acontinue_with(10**9, targets.add, 1, 1),
        *(engine.aenqueue(targets.add, i, i) for i in range(5, 10)),
        return_exceptions=True,
    )
    assert sizes == [11]
    assert isinstance(results[5], JobNotFoundError)
    ok = [r for i, r in enumerate(results) if i != 5]
    assert all(isinstance(r, int) for r in ok) and len(set(ok)) == 10
    for job_id in ok:
        assert isinstance(job_id, int)
        assert stored(engine, storage_url, job_id) is State.ENQUEUED


@pytest.mark.needs_database
async def test_a_failed_commit_fails_every_caller_of_the_batch(
    engine: JobEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets.register_all(engine)
    storage: Any = engine.storage

    def failing_commit(conn: Any) -> None:  # SQLite: COMMIT is never sent
        raise CommitFailed("the commit did not happen")

    async def failing_commit_async(conn: Any) -> None:  # PostgreSQL: likewise
        raise CommitFailed("the commit did not happen")

    if engine.storage.name == "sqlite":
        monkeypatch.setattr(storage.connector, "commit", failing_commit)
    else:
        monkeypatch.setattr(storage, "_commit_batch", failing_commit_async)
    # (unique keys keep PostgreSQL on its transaction path, in both halves it writes at
    # once: a batch of plain jobs is one autocommit statement there, whose failures the
    # dropped-connection test covers)
    results = await asyncio.gather(
        *(engine.aenqueue(targets.add, i, i, unique_key=f"u{i}") for i in range(21)),
        return_exceptions=True,
    )
    assert all(isinstance(r, CommitFailed) for r in results)
    monkeypatch.undo()
    assert engine.monitoring.count_jobs() == 0  # nothing stored that a caller was not told of
    assert isinstance(await engine.aenqueue(targets.add, 1, 1), int)  # and it goes on


async def test_close_writes_what_callers_wait_for(engine: JobEngine, storage_url: str) -> None:
    targets.register_all(engine)
    tasks = [asyncio.create_task(engine.aenqueue(targets.add, i, i)) for i in range(20)]
    await asyncio.sleep(0)  # every task has queued its job; no commit has run yet
    engine.close()
    ids = await asyncio.gather(*tasks)
    assert len(set(ids)) == 20
    for job_id in ids:
        assert stored(engine, storage_url, job_id) is State.ENQUEUED
    assert isinstance(await engine.aenqueue(targets.add, 1, 1), int)  # usable again


async def test_a_cancelled_leader_does_not_cancel_the_others_commit(engine: JobEngine) -> None:
    targets.register_all(engine)
    tasks = [asyncio.create_task(engine.aenqueue(targets.add, i, i)) for i in range(10)]
    await asyncio.sleep(0)  # every task has queued its job; the first leads the batch
    tasks[0].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    ids = results[1:]
    assert all(isinstance(r, int) for r in ids) and len(set(ids)) == 9
    for job_id in ids:
        assert isinstance(job_id, int)
        assert engine.get(job_id).state is State.ENQUEUED


async def test_callers_on_other_event_loops_share_the_writer(
    engine: JobEngine, storage_url: str
) -> None:
    targets.register_all(engine)
    found: list[int] = []
    lock = threading.Lock()

    def in_thread(k: int) -> None:
        async def run() -> list[int]:
            return list(
                await asyncio.gather(*(engine.aenqueue(targets.add, k, i) for i in range(25)))
            )

        ids = asyncio.run(run())
        with lock:
            found.extend(ids)

    threads = [threading.Thread(target=in_thread, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    mine = await asyncio.gather(*(engine.aenqueue(targets.add, 9, i) for i in range(25)))
    for t in threads:
        t.join()
    everything = found + list(mine)
    assert len(set(everything)) == 100
    for job_id in everything:
        assert stored(engine, storage_url, job_id) is State.ENQUEUED


async def test_a_dropped_postgresql_connection_fails_the_batch_and_recovers(
    postgres_url: str,
) -> None:
    import psycopg

    def count() -> int:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT count(*) FROM diquis_jobs").fetchone()
            assert row is not None
            return int(row[0])

    engine = JobEngine(postgres_url)
    targets.register_all(engine)
    try:
        await asyncio.gather(*(engine.aenqueue(targets.add, i, i) for i in range(10)))
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(  # every pooled connection of the engine dies
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        results = await asyncio.gather(
            *(engine.aenqueue(targets.add, i, i) for i in range(20)), return_exceptions=True
        )
        # two halves in flight: the one on the dead connection fails whole, the other may
        # have opened a fresh one
        failed = [r for r in results if isinstance(r, psycopg.OperationalError)]
        ok = [r for r in results if isinstance(r, int)]
        assert len(failed) in (10, 20) and len(failed) + len(ok) == 20, results
        assert count() == 10 + len(ok)  # the failed batch left nothing behind
        for _ in range(10):  # the pool drops each dead connection as it meets it
            done = await asyncio.gather(
                *(engine.aenqueue(targets.add, 1, 1) for _ in range(5)), return_exceptions=True
            )
            if all(isinstance(r, int) for r in done):
                break
            assert all(isinstance(r, psycopg.OperationalError) for r in done)
        assert len(set(done)) == 5
        assert count() == 15 + len(ok)
    finally:
        engine.close()


async def test_a_statement_error_on_postgresql_fails_only_its_caller(postgres_url: str) -> None:
    import psycopg

    engine = JobEngine(postgres_url)
    targets.register_all(engine)
    try:
        sizes = record_batches(engine)
        results = await asyncio.gather(
            *(engine.aenqueue(targets.add, i, i) for i in range(5)),
            engine.aenqueue(targets.add, 9, 9, tags=["nul\x00byte"]),  # text cannot hold NUL
            engine.aenqueue(targets.add, 8, 8, unique_key="k"),
            return_exceptions=True,
        )
        assert sizes == [7]
        assert isinstance(results[5], psycopg.DataError)
        ok = [r for i, r in enumerate(results) if i != 5]
        assert all(isinstance(r, int) for r in ok) and len(set(ok)) == 6
        assert engine.monitoring.count_jobs() == 6
    finally:
        engine.close()


class Ticker:
    """A coroutine that counts turns of the event loop while it runs."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    async def advance(self, turns: int) -> None:
        """Return once the ticker has ticked ``turns`` more times."""
        goal = self.ticks + turns
        while self.ticks < goal:
            await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._task.cancel()


async def test_a_sqlite_write_lock_held_elsewhere_does_not_block_the_loop(tmp_path: Path) -> None:
    engine = JobEngine(f"sqlite:///{tmp_path}/jobs.db")
    targets.register_all(engine)
    assert engine.monitoring.count_jobs() == 0  # the store exists (migrated, in WAL mode)
    held, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        conn = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(5)  # the test lets go; at the latest after 5 s (a blocked loop cannot)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    held.wait()
    ticker = Ticker()
    try:
        pending = asyncio.gather(*(engine.aenqueue(targets.add, i, i) for i in range(10)))
        await ticker.advance(5)  # the loop goes on while the batch waits for the lock
        assert not pending.done() and not release.is_set()
        release.set()
        ids = await pending
        assert len(set(ids)) == 10
        assert all(engine.get(j).state is State.ENQUEUED for j in ids)
        assert engine.monitoring.count_jobs() == 10
        await ticker.advance(1)
        assert isinstance(await engine.aenqueue(targets.add, 1, 1), int)  # the fast path again
    finally:
        release.set()
        ticker.stop()
        holder.join()
        engine.close()


async def test_a_sqlite_commit_reported_busy_is_written_again_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = JobEngine(f"sqlite:///{tmp_path}/jobs.db")
    targets.register_all(engine)
    connector: Any = engine.storage.connector  # type: ignore[attr-defined]
    real = connector.commit
    calls: list[threading.Thread] = []

    def busy_once(conn: sqlite3.Connection) -> None:
        calls.append(threading.current_thread())
        if len(calls) == 1:  # the loop's attempt: SQLite says busy, the transaction stays
            raise sqlite3.OperationalError("database is locked")
        real(conn)

    monkeypatch.setattr(connector, "commit", busy_once)
    try:
        ids = await asyncio.gather(*(engine.aenqueue(targets.add, i, i) for i in range(10)))
        assert len(calls) == 2 and calls[0] is not calls[1]  # then a thread wrote the batch
        assert len(set(ids)) == 10
        assert engine.monitoring.count_jobs() == 10  # none lost, none twice
        assert sorted(engine.get(j).args[0] for j in ids) == list(range(10))
    finally:
        engine.close()


async def test_a_postgresql_row_lock_does_not_block_the_loop(postgres_url: str) -> None:
    import psycopg

    engine = JobEngine(postgres_url)
    targets.register_all(engine)
    held, release = threading.Event(), threading.Event()
    theirs: list[int] = []

    def insert_the_key_and_wait() -> None:  # another transaction holds the key's row lock
        with psycopg.connect(postgres_url) as conn:
            theirs.append(engine.enqueue(targets.add, 0, 0, unique_key="k", connection=conn))
            held.set()
            release.wait(5)  # the test lets go; at the latest after 5 s
            conn.commit()

    holder = threading.Thread(target=insert_the_key_and_wait)
    holder.start()
    held.wait()
    ticker = Ticker()
    try:
        pending = asyncio.gather(
            *(engine.aenqueue(targets.add, i, i) for i in range(5)),
            engine.aenqueue(targets.add, 9, 9, unique_key="k"),  # waits for their commit
        )
        await ticker.advance(5)  # the loop goes on while the batch waits for the lock
        assert not pending.done() and not release.is_set()
        release.set()
        results = await pending
        assert results[5] == theirs[0]  # their job, now committed, holds the key
        assert len(set(results[:5])) == 5 and theirs[0] not in results[:5]
        assert engine.monitoring.count_jobs() == 6
    finally:
        release.set()
        ticker.stop()
        holder.join()
        engine.close()


async def test_postgresql_loop_connections_are_closed_with_the_engine(postgres_url: str) -> None:
    import psycopg

    def sessions() -> int:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            ).fetchone()
            assert row is not None
            return int(row[0])

    before = sessions()
    for _ in range(3):
        engine = JobEngine(postgres_url)
        targets.register_all(engine)
        await asyncio.gather(*(engine.aenqueue(targets.add, i, i) for i in range(3)))
        # two halves at once: the loop keeps a connection for each
        await asyncio.gather(*(engine.aenqueue(targets.add, i, i) for i in range(40)))
        # the engine's pool and the loop's two (a closed session leaves pg_stat_activity
        # a moment after its client let go: wait for that, not for a fixed time)
        await eventually(lambda: sessions() == before + 1 + 2, 5.0, "the engine's 3 sessions")
        engine.close()
        await eventually(lambda: sessions() == before, 5.0, "the engine's sessions to end")


class SlowWrites:
    """A store's write paths for a bare GroupCommitter: each batch waits for ``release``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.sizes: list[int] = []
        self.next_id = 0

    def now(self, jobs: Sequence[NewJob]) -> None:
        return None  # always "would wait": the async path writes

    async def later(self, jobs: Sequence[NewJob]) -> list[Result]:
        self.sizes.append(len(jobs))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        first, self.next_id = self.next_id, self.next_id + len(jobs)
        return [(first + k, True) for k in range(len(jobs))]

    def blocking(self, jobs: Sequence[NewJob]) -> list[Result]:
        raise AssertionError("not closed in these tests")

    def committer(self, writers: int) -> GroupCommitter:
        return GroupCommitter(
            self.now, self.later, self.blocking, lambda jobs, results: None, lambda: writers
        )


def new_job(engine: JobEngine, i: int) -> NewJob:
    return engine._new_job(
        targets.add, (i, i), {}, state=State.ENQUEUED, queue=None, tags=(), unique_key=None
    )


@pytest.mark.parametrize("writers", [1, 2])
async def test_a_loop_has_at_most_its_writers_batches_in_flight(writers: int) -> None:
    engine = JobEngine("memory://")
    targets.register_all(engine)
    writes = SlowWrites()
    committer = writes.committer(writers)
    first = [asyncio.create_task(committer.submit(new_job(engine, i))) for i in range(40)]
    for _ in range(5):
        await asyncio.sleep(0)
    # 40 callers found every writer free: two halves at once with two writers, else one
    assert writes.sizes == ([40] if writers == 1 else [20, 20])
    later = [asyncio.create_task(committer.submit(new_job(engine, i))) for i in range(30)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(writes.sizes) == writers and writes.in_flight == writers  # the rest queue
    writes.release.set()
    ids = await asyncio.gather(*first, *later)
    assert len({job_id for job_id, _ in ids}) == 70
    assert writes.most_in_flight == writers
    assert sum(writes.sizes) == 70


async def test_a_small_batch_is_not_split() -> None:
    engine = JobEngine("memory://")
    targets.register_all(engine)
    writes = SlowWrites()
    writes.release.set()
    committer = writes.committer(2)
    n = 2 * MIN_SPLIT - 1
    await asyncio.gather(*(committer.submit(new_job(engine, i)) for i in range(n)))
    assert writes.sizes == [n]


def spawned(committer: GroupCommitter, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch ``committer`` to note the size of the first batch of every task it starts."""
    sizes: list[int] = []
    real = committer._spawn

    def spy(loop: Any, state: Any, first: list[Any], *, declined: bool) -> None:
        sizes.append(len(first))
        real(loop, state, first, declined=declined)

    monkeypatch.setattr(committer, "_spawn", spy)
    return sizes


async def test_a_lone_caller_writes_its_own_job_without_a_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = JobEngine("memory://")
    targets.register_all(engine)
    writes = SlowWrites()
    writes.release.set()
    committer = writes.committer(2)
    tasks = spawned(committer, monkeypatch)
    assert [await committer.submit(new_job(engine, i)) for i in range(3)] == [
        (0, True),
        (1, True),
        (2, True),
    ]
    assert writes.sizes == [1, 1, 1] and tasks == []  # each caller wrote its own
    await asyncio.gather(*(committer.submit(new_job(engine, i)) for i in range(3)))
    assert writes.sizes[3:] == [3] and tasks == [3]  # a batch of others': a task writes it
    assert committer._loops == {}


def test_a_leader_yields_only_when_others_could_join() -> None:
    """On asyncio's loop with nothing else ready, a lone caller writes at once: its call
    completes without ever suspending (no loop turn). Callers started together see each
    other ready: the first yields, and the others join its batch in that turn."""
    engine = JobEngine("memory://")
    targets.register_all(engine)
    sizes: list[int] = []

    def write_now(jobs: Sequence[NewJob]) -> list[Result]:
        sizes.append(len(jobs))
        return [(len(sizes), True)] * len(jobs)

    async def never(jobs: Sequence[NewJob]) -> list[Result]:
        raise AssertionError("write_now always writes here")

    committer = GroupCommitter(write_now, never, write_now, lambda jobs, results: None)

    async def main() -> None:
        call = committer.submit(new_job(engine, 0))
        with pytest.raises(StopIteration) as done:
            call.send(None)  # nothing else ready: no turn, the job is written at once
        assert done.value.value == (1, True) and sizes == [1]
        together = [asyncio.ensure_future(committer.submit(new_job(engine, i))) for i in (1, 2, 3)]
        assert await asyncio.gather(*together) == [(2, True)] * 3
        assert sizes == [1, 3]  # the leader yielded once: the other two joined its batch

    loop = asyncio.SelectorEventLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert committer._loops == {}


@pytest.mark.parametrize("cancelled", [False, True], ids=["returns", "cancelled"])
async def test_callers_that_come_while_a_lone_caller_writes_are_written_after_it(
    cancelled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lone caller holds the loop's only writer: whoever queues meanwhile is written
    once it is done — also when it is cancelled mid-write (its own job only is lost)."""
    engine = JobEngine("memory://")
    targets.register_all(engine)
    writes = SlowWrites()
    committer = writes.committer(1)
    tasks = spawned(committer, monkeypatch)
    lone = asyncio.create_task(committer.submit(new_job(engine, 0)))
    for _ in range(3):
        await asyncio.sleep(0)
    assert writes.in_flight == 1 and tasks == []  # written by the caller itself
    others = [asyncio.create_task(committer.submit(new_job(engine, i))) for i in range(1, 6)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert writes.sizes == [1]  # the only writer is busy: they queue
    if cancelled:
        lone.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
    writes.release.set()
    results = await asyncio.gather(lone, *others, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError) if cancelled else results[0] == (0, True)
    assert len({r for r in results[1:] if isinstance(r, tuple)}) == 5
    assert writes.sizes == [1, 5] and tasks == [0]  # a task took over the queue
    assert committer._loops == {}


async def test_postgresql_batches_in_flight_at_once_take_unique_keys_in_one_order(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two halves written at once, with the same keys in opposite order, do not deadlock.

    Each half inserts its keyed jobs in key order, so one waits for the other's key and
    then finds it taken; in arrival order the two would wait for each other (PostgreSQL
    would abort one after ``deadlock_timeout`` and the engine retry its jobs one by one).
    """
    engine = JobEngine(postgres_url)
    targets.register_all(engine)
    storage: Any = engine.storage
    fell_back: list[int] = []
    one_by_one = storage._aone_by_one

    async def spy(conn: Any, jobs: Sequence[NewJob], now: float) -> Any:
        if len(jobs) > 1:
            fell_back.append(len(jobs))
        return await one_by_one(conn, jobs, now)

    monkeypatch.setattr(storage, "_aone_by_one", spy)
    keys = [f"k{n:02d}" for n in range(MIN_SPLIT)]
    try:
        sizes = record_batches(engine)
        results = await asyncio.gather(
            *(engine.aenqueue(targets.add, 1, n, unique_key=k) for n, k in enumerate(keys)),
            *(engine.aenqueue(targets.add, 2, n, unique_key=k) for n, k in enumerate(keys[::-1])),
        )
        assert sizes == [MIN_SPLIT, MIN_SPLIT]  # the two halves, in flight at once
        assert fell_back == []  # neither half was aborted as a deadlock
        by_key = dict(zip(keys + keys[::-1], results, strict=True))
        assert len(set(results)) == MIN_SPLIT  # one job per key, both callers get it
        for k, job_id in by_key.items():
            assert engine.get(job_id).unique_key == k
    finally:
        engine.close()


async def test_callers_cancelled_at_random_leave_no_state_and_lose_no_job(
    engine: JobEngine, storage_url: str
) -> None:
    """Waves of callers, some cancelled at any point: every caller that returned has its
    job stored once, no other caller is stuck, and the committer forgets the loop."""
    import random

    targets.register_all(engine)
    rng = random.Random(14)
    before = engine.monitoring.count_jobs()
    tasks: list[asyncio.Task[int]] = []
    for wave in range(6):
        for i in range(40):
            tasks.append(asyncio.create_task(engine.aenqueue(targets.add, wave, i)))
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
        for task in rng.sample(tasks[-40:], 8):
            task.cancel()
        await asyncio.sleep(rng.choice([0, 0.001, 0.005]))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    ids = [r for r in results if isinstance(r, int)]
    others = [r for r in results if not isinstance(r, int)]
    assert all(isinstance(r, asyncio.CancelledError) for r in others), others
    assert len(ids) >= 240 - 6 * 8 and len(set(ids)) == len(ids)
    for job_id in ids:
        assert stored(engine, storage_url, job_id) is State.ENQUEUED
    stored_now = engine.monitoring.count_jobs() - before
    assert len(ids) <= stored_now <= len(tasks)  # a cancelled caller's job may exist
    for _ in range(20):  # writers still finishing a cancelled caller's batch
        if not engine._committer._loops:
            break
        await asyncio.sleep(0.05)
    assert engine._committer._loops == {}
