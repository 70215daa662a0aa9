"""What a run's end is written as: succeeded, failed for good, or scheduled for a retry.

Plain functions from a claimed job and how its run ended to the :class:`Outcome` the
writer stores; the retry policy decides between failing and scheduling the next attempt.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from ..errors import JobArgumentError
from ..model import ClaimedJob, HistoryEntry, Outcome
from ..retry import RetryPolicy
from ..serialization import dumps_value
from ..states import State


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def succeeded(job: ClaimedJob, result: Any, started: float, now: float, keep_for: float) -> Outcome:
    """The run returned ``result``; the job is kept for ``keep_for`` seconds."""
    data: dict[str, Any] = {"duration_ms": _ms_since(started)}
    stored: str | None = None
    if result is not None:
        try:
            stored = dumps_value(result, "result")
        except JobArgumentError as exc:
            data["result_not_stored"] = str(exc)
    return Outcome(
        job_id=job.id,
        attempt=job.attempt,
        history=(HistoryEntry(State.SUCCEEDED, "Completed", data),),
        retry_count=job.retry_count,
        expire_at=now + keep_for,
        result=stored,
    )


def failed(
    job: ClaimedJob, policy: RetryPolicy, exc: BaseException, started: float, now: float
) -> Outcome:
    """The run raised ``exc``: Failed, then Scheduled again if ``policy`` retries it."""
    message = str(exc)
    short = f"{type(exc).__name__}: {message}"[:500]
    details = {
        "exception_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "exception_message": message,
        "stack_trace": "".join(traceback.format_exception(exc)),
        "duration_ms": _ms_since(started),
    }
    failure = HistoryEntry(State.FAILED, short, details)
    if not policy.should_retry(exc, job.retry_count):
        return Outcome(
            job_id=job.id,
            attempt=job.attempt,
            history=(failure,),
            retry_count=job.retry_count,
            error=short,
        )
    retry = job.retry_count + 1
    delay = policy.delay(retry)
    scheduled = HistoryEntry(
        State.SCHEDULED,
        f"Retry attempt {retry} of {policy.attempts} in {delay:g}s: {short}"[:500],
        {"retry": retry, "attempts": policy.attempts, "delay_s": delay},
    )
    return Outcome(
        job_id=job.id,
        attempt=job.attempt,
        history=(failure, scheduled),
        retry_count=retry,
        scheduled_at=now + delay,
        error=short,
    )
