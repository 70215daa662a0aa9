"""Recurring jobs, in one place: definitions, planning due runs, firing them.

A server calls :meth:`RecurringJobs.fire_due` from its stager duty; the storage creates
the planned jobs and moves the definition on in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .cron import Cron, CronError, parse_timezone
from .errors import JobArgumentError, JobNotFoundError
from .model import NewJob, RecurringJob
from .registry import Target
from .serialization import dumps_args
from .states import State

if TYPE_CHECKING:
    from .engine import JobEngine

MISFIRE_MODES = ("once", "all", "skip")


def plan_due(
    rec: RecurringJob, now: float, misfire_grace: float
) -> tuple[list[NewJob], float | None, str | None]:
    """The jobs a due recurring job creates now, its next run time, and an error text."""
    try:
        cron = Cron.parse(rec.cron)
        tz = parse_timezone(rec.tz)
        due = rec.next_run_at if rec.next_run_at is not None else now
        due_dt = dt.datetime.fromtimestamp(due, dt.UTC)
        now_dt = dt.datetime.fromtimestamp(now, dt.UTC)
        if rec.misfire == "all":
            times = [due_dt, *cron.occurrences(due_dt, now_dt, tz, limit=99)]
        elif rec.misfire == "skip":
            times = [due_dt] if now - due <= misfire_grace else []
        else:
            times = [due_dt]
        next_run = cron.next_after(max(now_dt, due_dt), tz).timestamp()
    except CronError as exc:
        return [], None, str(exc)
    jobs = [
        NewJob(
            target=rec.target,
            args=rec.args,
            kwargs=rec.kwargs,
            queue=rec.queue,
            state=State.ENQUEUED,
            reason=f"Recurring job {rec.id!r} due at {t.isoformat()}",
            tags=(f"recurring:{rec.id}",),
            recurring_id=rec.id,
        )
        for t in times
    ]
    return jobs, next_run, None


def plan_trigger(rec: RecurringJob, now: float) -> tuple[list[NewJob], float | None, str | None]:
    """One job now, out of schedule (the definition's next run stays)."""
    job = NewJob(
        target=rec.target,
        args=rec.args,
        kwargs=rec.kwargs,
        queue=rec.queue,
        state=State.ENQUEUED,
        reason=f"Recurring job {rec.id!r} triggered by hand",
        tags=(f"recurring:{rec.id}",),
        recurring_id=rec.id,
    )
    return [job], rec.next_run_at, rec.error


class RecurringJobs:
    """Recurring jobs: cron schedules in a time zone that create ordinary jobs when due."""

    def __init__(self, engine: JobEngine) -> None:
        self._engine = engine

    def add_or_update(
        self,
        recurring_id: str,
        target: Callable[..., Any] | str,
        cron: str,
        /,
        *args: Any,
        tz: str = "UTC",
        queue: str | None = None,
        misfire: str = "once",
        **kwargs: Any,
    ) -> RecurringJob:
        """Create or change a recurring job; an unchanged schedule keeps its next run time.

        ``misfire`` says what happens to runs missed while no server ran: ``once`` (one run
        for all of them, Hangfire's default), ``all`` (one run each, at most 100), ``skip``.
        """
        if not isinstance(recurring_id, str) or not recurring_id.strip() or len(recurring_id) > 200:
            raise JobArgumentError(
                f"recurring id {recurring_id!r} must be a non-empty string of at most 200 chars"
            )
        if misfire not in MISFIRE_MODES:
            raise JobArgumentError(f"misfire= must be one of {MISFIRE_MODES}, got {misfire!r}")
        engine = self._engine
        schedule = Cron.parse(cron)
        zone = parse_timezone(tz)
        resolved: Target = engine.registry.resolve(target)
        resolved.check_arguments(args, kwargs)
        encoded_args, encoded_kwargs = dumps_args(args, kwargs)
        now = engine.now()
        existing = engine.storage.get_recurring(recurring_id)
        if (
            existing is not None
            and existing.cron == cron
            and existing.tz == tz
            and existing.next_run_at is not None
        ):
            next_run = existing.next_run_at
        else:
            next_run = schedule.next_after(dt.datetime.fromtimestamp(now, dt.UTC), zone).timestamp()
        rec = RecurringJob(
            id=recurring_id,
            target=resolved.name,
            args=encoded_args,
            kwargs=encoded_kwargs,
            cron=cron,
            tz=tz,
            queue=queue or resolved.queue or engine.default_queue,
            misfire=misfire,
            next_run_at=next_run,
        )
        engine.storage.save_recurring(rec, now)
        return rec

    def trigger(self, recurring_id: str) -> int:
        """Run a recurring job now, out of schedule; returns the new job's id."""
        engine = self._engine
        created, _ = engine.storage.fire_recurring(engine.now(), plan_trigger, only=recurring_id)
        engine.poke()
        return created[0]

    def fire_due(self, now: float) -> tuple[list[int], float | None]:
        """Create the jobs of every due recurring job; (new job ids, next due time)."""
        grace = self._engine.misfire_grace
        return self._engine.storage.fire_recurring(now, lambda rec, at: plan_due(rec, at, grace))

    def remove(self, recurring_id: str) -> bool:
        """Delete a recurring job (jobs it already created stay); whether it existed."""
        return self._engine.storage.remove_recurring(recurring_id)

    def get(self, recurring_id: str) -> RecurringJob:
        """One recurring job; JobNotFoundError if there is none."""
        rec = self._engine.storage.get_recurring(recurring_id)
        if rec is None:
            raise JobNotFoundError(f"recurring job {recurring_id!r} does not exist")
        return rec

    def list(self) -> list[RecurringJob]:
        """Every recurring job."""
        return self._engine.storage.list_recurring()


__all__ = ["MISFIRE_MODES", "RecurringJobs", "plan_due", "plan_trigger"]
