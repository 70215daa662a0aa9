"""What a running job can know about itself, and the hooks around each run."""

from __future__ import annotations

import contextvars
import math
import threading
import time
from dataclasses import dataclass, field

from .errors import JobArgumentError, JobError
from .model import ProgressUpdate
from .states import State

#: log lines a job keeps (the last ones); longer lines are cut
LOG_LINES = 200
LOG_LINE_CHARS = 2000


class JobCancelledError(JobError):
    """Raised by :meth:`JobContext.raise_if_cancelled` once the job was deleted or handed back."""


@dataclass
class JobContext:
    """The running job: ids, attempt, and the cancellation token sync targets poll."""

    job_id: int
    target: str
    queue: str
    attempt: int
    retry_count: int
    server_id: str
    cancel_reason: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # cancellation: a flag, and an Event made only when someone waits on it (an Event is
    # a Condition and its lock: ~8% of a no-op job's run time when made for every job)
    _cancelled: bool = field(default=False, repr=False)
    _event: threading.Event | None = field(default=None, repr=False)
    _percent: float | None = field(default=None, repr=False)
    _message: str | None = field(default=None, repr=False)
    _lines: list[tuple[float, str]] = field(default_factory=list, repr=False)
    _dirty: bool = field(default=False, repr=False)

    def report_progress(self, percent: float, message: str | None = None) -> None:
        """Say how far the job is (0-100) and what it does now; cheap to call often.

        Reports are kept in memory and written a few times a second at most (the last
        one wins), and once more when the run ends.
        """
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise JobArgumentError(f"percent must be a number from 0 to 100, got {percent!r}")
        if not math.isfinite(percent) or not 0 <= percent <= 100:
            raise JobArgumentError(f"percent must be from 0 to 100, got {percent!r}")
        with self._lock:
            self._percent = round(float(percent), 2)
            self._message = None if message is None else str(message)[:LOG_LINE_CHARS]
            self._dirty = True

    def log(self, line: str) -> None:
        """Add a line to the job's log (the last :data:`LOG_LINES` are kept)."""
        with self._lock:
            self._lines.append((time.time(), str(line)[:LOG_LINE_CHARS]))
            del self._lines[:-LOG_LINES]
            self._dirty = True

    def take_progress(self) -> ProgressUpdate | None:
        """What was reported since the last call (None: nothing new), for the writer."""
        with self._lock:
            if not self._dirty:
                return None
            update = ProgressUpdate(
                self.job_id, self.attempt, self._percent, self._message, tuple(self._lines)
            )
            self._lines = []
            self._dirty = False
            return update

    @property
    def cancelled(self) -> threading.Event:
        """An Event set when the job is cancelled: a sync target may wait on it."""
        with self._lock:
            if self._event is None:
                self._event = threading.Event()
                if self._cancelled:
                    self._event.set()
            return self._event

    @property
    def is_cancelled(self) -> bool:
        """Whether the job was deleted (or the server is stopping and gave up on it)."""
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelledError if the job was cancelled; sync targets call this to stop."""
        if self._cancelled:
            raise JobCancelledError(f"job {self.job_id} was cancelled: {self.cancel_reason}")

    def cancel(self, reason: str) -> None:
        """Mark the job cancelled (thread-safe)."""
        with self._lock:
            self.cancel_reason = reason
            self._cancelled = True
            event = self._event
        if event is not None:
            event.set()


_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("diquis_job")


def current_job() -> JobContext:
    """The context of the job running in this task or thread; LookupError outside a job."""
    try:
        return _current.get()
    except LookupError:
        raise LookupError("current_job() called outside a running job") from None


class JobFilter:
    """Hooks around runs and state changes, in the process that does them (override any)."""

    async def before_perform(self, context: JobContext) -> None:
        """Called before the target runs."""

    async def after_perform(self, context: JobContext, error: BaseException | None) -> None:
        """Called after the target returned (``error`` None) or raised."""

    def on_state_change(self, job_id: int, state: State, reason: str | None) -> None:
        """Called after a state change this process made was committed."""


def set_current(context: JobContext) -> contextvars.Token[JobContext]:
    """Make ``context`` the current job (for the engine's runner)."""
    return _current.set(context)


def reset_current(token: contextvars.Token[JobContext]) -> None:
    """Undo :func:`set_current`."""
    _current.reset(token)
