"""Latency stamps: a job records when it started next to when its client enqueued it.

Each worker process appends ``"<t_enqueue> <t_start>\\n"`` to its own file under
``$BENCH_STAMPS``; one ``os.write`` on an ``O_APPEND`` descriptor per line, so thread
workers never interleave. Both times are ``time.time()`` on the same machine.
"""

from __future__ import annotations

import os
import time

_fd: int | None = None


def write_stamp(t_enqueue: float) -> None:
    """Record that the job enqueued at ``t_enqueue`` starts now."""
    started = time.time()
    global _fd
    if _fd is None:
        path = os.path.join(os.environ["BENCH_STAMPS"], f"{os.getpid()}.txt")
        _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_fd, f"{t_enqueue!r} {started!r}\n".encode())
