"""What the batch pages show, as plain records (their templates only lay them out)."""

from __future__ import annotations

from dataclasses import dataclass

from ..jobs import Batch, Job, JobEngine
from .views import PAGE_SIZE, page_number


@dataclass
class BatchList:
    """A page of batches, newest first."""

    batches: list[Batch]
    page_no: int
    has_next: bool
    total: int


@dataclass
class BatchDetail:
    """One batch, a page of its jobs and the jobs continuing it."""

    batch: Batch
    jobs: list[Job]
    continuations: list[Job]
    page_no: int
    has_next: bool


def batch_list(engine: JobEngine, page_raw: str | None) -> BatchList:
    """A page of batches."""
    page_no = page_number(page_raw)
    monitoring = engine.monitoring
    found = monitoring.list_batches(limit=PAGE_SIZE + 1, offset=(page_no - 1) * PAGE_SIZE)
    return BatchList(found[:PAGE_SIZE], page_no, len(found) > PAGE_SIZE, monitoring.count_batches())


def batch_detail(engine: JobEngine, batch_id: int, page_raw: str | None) -> BatchDetail | None:
    """One batch with a page of its jobs, or None."""
    monitoring = engine.monitoring
    batch = monitoring.get_batch(batch_id)
    if batch is None:
        return None
    page_no = page_number(page_raw)
    jobs = monitoring.batch_jobs(batch_id, limit=PAGE_SIZE + 1, offset=(page_no - 1) * PAGE_SIZE)
    continuations = [j for j in (monitoring.get_job(c) for c in batch.continuations) if j]
    return BatchDetail(batch, jobs[:PAGE_SIZE], continuations, page_no, len(jobs) > PAGE_SIZE)
