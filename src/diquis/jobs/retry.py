"""Retry policies: how many times a failed job runs again, when, and for which errors."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def hangfire_backoff(retry: int) -> float:
    """Hangfire's delay before retry ``retry`` (1-based): (n-1)^4 + 15 + rand(30)*n seconds."""
    return float((retry - 1) ** 4 + 15 + random.randrange(30) * retry)


@dataclass(frozen=True)
class RetryPolicy:
    """Per-target retry settings; ``attempts`` counts retries after the first run, as Hangfire."""

    attempts: int = 10
    #: fixed delays in seconds (the last repeats), or a function of the 1-based retry number
    delays: Sequence[float] | Callable[[int], float] = hangfire_backoff
    #: only these exception types are retried
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    #: these are never retried, even if ``retry_on`` matches
    dont_retry_on: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError(f"RetryPolicy.attempts must be >= 0, got {self.attempts}")
        if not callable(self.delays) and not self.delays and self.attempts:
            raise ValueError("RetryPolicy.delays must not be empty when attempts > 0")

    def should_retry(self, exc: BaseException, failures_so_far: int) -> bool:
        """Whether a job that failed ``failures_so_far`` times before ``exc`` runs again."""
        if failures_so_far >= self.attempts:
            return False
        if isinstance(exc, self.dont_retry_on):
            return False
        return isinstance(exc, self.retry_on)

    def delay(self, retry: int) -> float:
        """Seconds to wait before the ``retry``-th retry (1-based)."""
        if callable(self.delays):
            return max(0.0, float(self.delays(retry)))
        return max(0.0, float(self.delays[min(retry, len(self.delays)) - 1]))


NO_RETRY = RetryPolicy(attempts=0)
