"""Child processes a test starts itself: output in a log file, ended by their own handle.

Nothing here looks a process up by name: :func:`stop`, :func:`kill` and :func:`kill9`
take the ``Popen`` that :func:`spawn` (or the test) returned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

Child = subprocess.Popen[Any]


def spawn(
    args: Sequence[str],
    *,
    log: Path | None = None,
    append: bool = False,
    banner: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args``. With ``log``, stdout and stderr go to that file (truncated, or
    appended to after ``banner``) and stdin is /dev/null; without, the child inherits the
    test's own streams."""
    if log is None:
        return subprocess.Popen(list(args), env=env, cwd=cwd)
    with log.open("ab" if append else "wb") as out:
        if banner:
            out.write(banner.encode())
            out.flush()
        return subprocess.Popen(
            list(args), env=env, cwd=cwd,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def read_log(log: Path) -> str:
    """What the child wrote so far ("" before it wrote anything)."""
    try:
        return log.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def running(child: Child | None) -> bool:
    return child is not None and child.poll() is None


def stop(child: Child | None, timeout: float = 10.0, kill_timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout``; nothing if it has ended."""
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=kill_timeout)


def stop_all(children: Iterable[Child], timeout: float = 10.0, kill_timeout: float = 5.0) -> None:
    """:func:`stop` for several at once: SIGTERM to all first, so they shut down together."""
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(kill_timeout)


def kill(child: Child | None, timeout: float = 10.0) -> None:
    """SIGKILL it if it still runs (as a crash would), and reap it."""
    if child is not None and child.poll() is None:
        child.kill()
        child.wait(timeout=timeout)


def kill9(child: Child, timeout: float = 5.0) -> None:
    """``kill -9`` its PID whatever the handle thinks, and reap it."""
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=timeout)


def wait_ready(
    child: Child,
    ready: Callable[[], object],
    *,
    what: str,
    output: Callable[[], str],
    timeout: float = 30.0,
    deadline: float | None = None,
    interval: float = 0.2,
    tail: int = 4000,
) -> None:
    """Poll ``ready`` until it is truthy; fail with the end of ``output`` if the child exits
    first or ``timeout`` (or the monotonic ``deadline``) passes."""
    if deadline is None:
        deadline = time.monotonic() + timeout
    while True:
        if child.poll() is not None:
            raise AssertionError(f"{what} exited early:\n{output()[-tail:]}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready in time:\n{output()[-tail:]}")
        time.sleep(interval)


def answers_readyz(base: str) -> bool:
    """``GET {base}/readyz`` answers 200 (a refused or slow connection is just "no")."""
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    return False
