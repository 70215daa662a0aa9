"""What a running job can know about itself, and the hooks around each run."""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field

from .errors import JobError
from .states import State


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
    cancelled: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str | None = None

    @property
    def is_cancelled(self) -> bool:
        """Whether the job was deleted (or the server is stopping and gave up on it)."""
        return self.cancelled.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise JobCancelledError if the job was cancelled; sync targets call this to stop."""
        if self.cancelled.is_set():
            raise JobCancelledError(f"job {self.job_id} was cancelled: {self.cancel_reason}")

    def cancel(self, reason: str) -> None:
        """Mark the job cancelled (thread-safe)."""
        self.cancel_reason = reason
        self.cancelled.set()


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
