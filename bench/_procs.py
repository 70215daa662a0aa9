"""Process helpers the benchmarks share: ports, CPU time, stopping children, Node clients.

Every script stops only the processes it started, by their handles (never by name).
"""

from __future__ import annotations

import json
import os
import queue
import resource
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent / "hub_node"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> None:
    """Child processes hold thousands of sockets: lift the soft open-file limit to the hard."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds_precise(pid: int) -> float:
    """CPU seconds of ``pid``'s live threads so far, to the nanosecond (each thread's
    ``/proc/PID/task/TID/schedstat``). ``/proc/PID/stat`` counts whole clock ticks (10 ms),
    too coarse for a process that uses a few ms a second; threads that have ended are not
    counted here, so use it over a window in which the process starts none. Falls back to
    :func:`cpu_seconds` where the kernel keeps no schedstat."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except FileNotFoundError:  # a thread that ended while we read
                continue
    except FileNotFoundError:
        return cpu_seconds(pid)
    return total / 1e9 if total else cpu_seconds(pid)


def end(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """Stop a process this script started: SIGTERM, then SIGKILL after ``timeout`` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class NodeProcess:
    """A Node script in bench/hub_node holding connections; JSON lines both ways.

    The script gets ``config`` as its one argument, reads ``{"cmd": ...}`` lines and
    writes ``{"event": ...}`` lines; ``cpu`` pins it to a core with taskset.
    """

    def __init__(self, script: str, config: dict[str, Any], log: Any, cpu: int | None = None):
        command = ["node", str(NODE_DIR / script), json.dumps(config)]
        if cpu is not None and shutil.which("taskset"):
            command = ["taskset", "-c", str(cpu), *command]
        self.script = script
        self.proc = subprocess.Popen(
            command, cwd=NODE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            text=True, preexec_fn=raise_nofile,
        )  # fmt: skip
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))
        self.events.put(None)

    def command(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd}) + "\n")
        self.proc.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next ``event`` line (others are skipped); TimeoutError or RuntimeError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no {event!r} from {self.script} in {timeout:.0f} s") from None
            if item is None:
                raise RuntimeError(f"{self.script} exited (code {self.proc.poll()})")
            if item.get("event") == event:
                return item

    def stop(self, timeout: float = 30) -> None:
        """Ask the script to close its connections, then end it."""
        if self.proc.poll() is None:
            try:
                self.command("stop")
                self.proc.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        end(self.proc)
