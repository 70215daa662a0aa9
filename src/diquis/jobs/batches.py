"""Batches: many jobs created at once (all or none) and followed as one.

>>> with jobs.batch() as b:
...     for user in users:
...         b.enqueue(send_digest, user.id)
>>> jobs.continue_batch_with(b.id, report_done, on="any")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .model import NewJob
from .states import State

if TYPE_CHECKING:
    from .engine import JobEngine


class BatchBuilder:
    """Collects a batch's jobs; they are written in one transaction when the block ends."""

    def __init__(self, engine: JobEngine, batch_id: int, *, fresh: bool) -> None:
        #: the batch's id (known inside the block, e.g. for a continuation)
        self.id = batch_id
        #: the ids of the jobs created, once the block has ended
        self.job_ids: list[int] = []
        self._engine = engine
        self._fresh = fresh
        self._jobs: list[NewJob] = []

    def enqueue(
        self,
        target: Callable[..., Any] | str,
        /,
        *args: Any,
        queue: str | None = None,
        tags: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        """Add a job (checked now, created when the block ends)."""
        self._jobs.append(
            self._engine._new_job(
                target,
                args,
                kwargs,
                state=State.ENQUEUED,
                queue=queue,
                tags=tags,
                unique_key=None,
            )
        )

    def __len__(self) -> int:
        return len(self._jobs)

    def __enter__(self) -> BatchBuilder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        engine = self._engine
        if exc_type is not None:
            if self._fresh:
                engine.storage.discard_batch(self.id)
            return
        try:
            self.job_ids = engine.storage.add_to_batch(self.id, self._jobs, engine.now())
        except BaseException:
            if self._fresh:
                engine.storage.discard_batch(self.id)
            raise
        if self.job_ids:
            engine.poke()


__all__ = ["BatchBuilder"]
