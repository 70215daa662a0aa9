"""Idle servers' wake-ups: SQLite's (inotify on the WAL confirmed by data_version, its
fallback poll), PostgreSQL's LISTEN read by the loop, and the cross-process feed on both.

Each test waits with a timeout far beyond the test's own bound, so finishing at all
proves the wake-up came from the event (no timing is asserted).
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from diquis.jobs import JobEngine, State
from diquis.jobs.storage import sqlite_waker
from diquis.jobs.storage.inotify import DirectoryWatch
from diquis.jobs.storage.sqlite import SQLiteConnector
from diquis.jobs.storage.timerfd import Ticker

FOREVER = 3600.0  # a wait() that only an event can end within the test's time
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def write_from_another_process(db: Path, rows: int = 1) -> None:
    """Commit ``rows`` inserts to ``db`` in one transaction, from a new Python process."""
    code = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "c.execute('CREATE TABLE IF NOT EXISTS poke (x)')\n"
        "for i in range(int(sys.argv[2])): c.execute('INSERT INTO poke VALUES (?)', (i,))\n"
        "c.execute('COMMIT')\n"
        "c.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db), str(rows)], check=True, timeout=60)


async def jobs_from_another_process(url: str, jobs: int, *, drain: bool = False) -> None:
    """Enqueue ``jobs`` jobs into the store at ``url`` (and run them: ``drain``) from a new
    Python process; returns when it has exited."""
    code = (
        "import asyncio, sys\n"
        "from diquis.jobs import JobEngine\n"
        "from tests.jobs.targets import add\n"
        "e = JobEngine(sys.argv[1])\n"
        "e.job(add)\n"
        "for i in range(int(sys.argv[2])): e.enqueue(add, i, 1)\n"
        "if sys.argv[3] == 'drain': asyncio.run(e.drain())\n"
        "e.close()\n"
    )
    argv = [sys.executable, "-c", code, url, str(jobs), "drain" if drain else "no"]
    root = Path(__file__).resolve().parents[2]
    await asyncio.to_thread(subprocess.run, argv, check=True, timeout=120, cwd=root)


@pytest.fixture
def connector(tmp_path: Path) -> SQLiteConnector:
    conn = SQLiteConnector(f"sqlite:///{tmp_path}/jobs.db")
    conn.migrate()
    return conn


def disable_inotify(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a platform without inotify: making the watch fails."""

    def unavailable(*args: object) -> DirectoryWatch:
        raise OSError(errno.ENOSYS, "no inotify here")

    monkeypatch.setattr(sqlite_waker, "DirectoryWatch", unavailable)


@pytest.fixture
def no_inotify(monkeypatch: pytest.MonkeyPatch) -> None:
    disable_inotify(monkeypatch)


@pytest.fixture
async def waker(connector: SQLiteConnector) -> AsyncIterator[sqlite_waker.SQLiteWaker]:
    """The connector's waker (it sets itself up on its first wait), closed after the test."""
    made = connector.waker(["default"])
    assert isinstance(made, sqlite_waker.SQLiteWaker)
    yield made
    await made.close()
    connector.close()


async def started(waker: sqlite_waker.SQLiteWaker) -> asyncio.Task[None]:
    """A task waiting on ``waker``, once its wake-up is in place."""
    task = asyncio.create_task(waker.wait(FOREVER))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if waker._waiter is not None:
            break
    assert not task.done()
    return task


@linux_only
async def test_the_kernel_wakes_it_on_a_commit_from_another_process(
    connector: SQLiteConnector,
    waker: sqlite_waker.SQLiteWaker,
) -> None:
    task = await started(waker)
    assert waker.watching
    await asyncio.to_thread(write_from_another_process, connector.path)
    await asyncio.wait_for(task, 60)
    # and again: the second commit is seen too
    task = await started(waker)
    await asyncio.to_thread(write_from_another_process, connector.path, 3)
    await asyncio.wait_for(task, 60)


async def test_without_inotify_it_polls_data_version(
    connector: SQLiteConnector, waker: sqlite_waker.SQLiteWaker, no_inotify: None
) -> None:
    task = await started(waker)
    assert not waker.watching
    await asyncio.to_thread(write_from_another_process, connector.path)
    await asyncio.wait_for(task, 60)


@linux_only
async def test_a_heard_write_is_looked_for_on_every_tick_until_its_commit_shows(
    connector: SQLiteConnector,
    waker: sqlite_waker.SQLiteWaker,
) -> None:
    # inotify hears a WAL write before its commit is published (after the fsync): the
    # waker then looks every TICK, on a timerfd, and stops the ticker once it has its commit
    task = await started(waker)
    ticker = waker._ticker
    assert ticker is not None
    assert ticker.period == 0  # a quiet database: no ticks
    waker._written_at = time.monotonic()  # as inotify reports: a write, no commit yet
    waker._wake()
    await asyncio.sleep(0.005)
    assert ticker.period == sqlite_waker.TICK
    assert not task.done()
    await asyncio.to_thread(write_from_another_process, connector.path)
    await asyncio.wait_for(task, 60)
    assert ticker.period == 0  # no ticks outside a wait: an idle server costs nothing


@linux_only
async def test_without_timerfd_a_heard_write_is_looked_for_every_millisecond(
    connector: SQLiteConnector, waker: sqlite_waker.SQLiteWaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable() -> Ticker:
        raise OSError(errno.ENOSYS, "no timerfd here")

    monkeypatch.setattr(sqlite_waker, "Ticker", unavailable)
    task = await started(waker)
    assert waker.watching and waker._ticker is None
    waker._written_at = time.monotonic()
    waker._wake()
    await asyncio.to_thread(write_from_another_process, connector.path)
    await asyncio.wait_for(task, 60)


@linux_only
async def test_a_ticker_ticks_on_its_descriptor_until_stopped() -> None:
    ticker = Ticker()
    loop = asyncio.get_running_loop()
    ticked = asyncio.Event()
    counts: list[int] = []

    def on_tick() -> None:
        counts.append(ticker.read())
        if len(counts) >= 5:
            ticked.set()

    loop.add_reader(ticker.fileno(), on_tick)
    try:
        ticker.start(0.0005)
        await asyncio.wait_for(ticked.wait(), 60)
        assert sum(counts) >= 5
        ticker.stop()
        await asyncio.sleep(0.005)
        loop.remove_reader(ticker.fileno())
        ticker.read()  # a tick that fired as it stopped
        await asyncio.sleep(0.005)
        assert ticker.read() == 0
        with pytest.raises(ValueError, match="period must be positive"):
            ticker.start(0)
    finally:
        ticker.close()
    ticker.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        ticker.fileno()


@pytest.mark.parametrize("kernel", [True, False], ids=["inotify", "fallback"])
async def test_poke_wakes_it_from_any_thread(
    connector: SQLiteConnector, kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not kernel:
        disable_inotify(monkeypatch)
    waker = connector.waker(["default"])
    try:
        waker.poke()  # before any wait: the first wait returns at once
        await asyncio.wait_for(waker.wait(FOREVER), 60)
        task = await started(waker)
        threading.Thread(target=waker.poke).start()
        await asyncio.wait_for(task, 60)
        task = await started(waker)
        waker.poke()  # from the loop itself
        await asyncio.wait_for(task, 60)
    finally:
        await waker.close()
        connector.close()


@linux_only
def test_the_watch_sees_the_wal_deleted_and_made_again(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE poke (x)")
    wal = tmp_path / "jobs.db-wal"
    assert wal.exists()
    watch = DirectoryWatch(tmp_path, [wal.name])
    try:
        conn.close()  # the last connection: SQLite checkpoints and deletes the WAL
        assert not wal.exists()
        watch.read()  # forget the checkpoint's own events
        assert not watch.read()
        write_from_another_process(db)  # a new writer makes a new WAL
        assert watch.read()
        write_from_another_process(db)
        assert watch.read()
        (tmp_path / "unrelated-wal").write_text("x")  # other files do not count
        assert not watch.read()
    finally:
        watch.close()


@pytest.mark.parametrize("store", ["sqlite-inotify", "sqlite-fallback", "postgres"])
async def test_state_changes_deliver_every_change_from_another_process_in_order(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if store == "sqlite-fallback":
        disable_inotify(monkeypatch)
    if store == "postgres":
        url: str = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path}/jobs.db"
    engine = JobEngine(url)
    engine.storage.migrate()
    got: list[tuple[int, State]] = []
    want = 3 * 20  # 20 jobs, each Enqueued, Processing, Succeeded

    async def listen() -> None:
        async for change in engine.state_changes(poll_interval=0.05):
            got.append((change.job_id, change.state))
            if len(got) == want:
                return

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.3)  # the listener has read where the history ends
    await jobs_from_another_process(url, 20, drain=True)
    try:
        await asyncio.wait_for(task, 60)
        with engine.storage.connector.transaction(write=False) as conn:  # type: ignore[attr-defined]
            history = conn.execute("SELECT job_id, state FROM diquis_job_history ORDER BY id")
            assert got == [(job_id, State(state)) for job_id, state in history.fetchall()]
        assert {s for _, s in got} == {State.ENQUEUED, State.PROCESSING, State.SUCCEEDED}
    finally:
        task.cancel()
        engine.close()


async def test_postgres_waker_wakes_on_a_commit_from_another_process(postgres_url: str) -> None:
    engine = JobEngine(postgres_url)
    engine.storage.migrate()
    waker = engine.storage.waker(["default"])
    try:
        await asyncio.wait_for(waker.wait(FOREVER), 60)  # the first wait: listening, look once
        task = asyncio.create_task(waker.wait(FOREVER))
        await asyncio.sleep(0.3)
        assert not task.done()
        await jobs_from_another_process(postgres_url, 1)
        await asyncio.wait_for(task, 60)
    finally:
        await waker.close()
        engine.close()
