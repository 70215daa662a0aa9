"""The engine's public face: register targets, create and steer jobs, build servers."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .batches import BatchBuilder
from .concurrency import Concurrency, check_queue_limit
from .context import JobFilter
from .enqueuer import GroupCommitter, Result
from .errors import JobArgumentError, JobNotFoundError
from .model import Batch, Job, NewJob, StateChange
from .monitoring import MonitoringApi
from .recurring import RecurringJobs
from .registry import Activator, Registry, default_activator
from .retry import RetryPolicy
from .serialization import dumps_args
from .states import DELETE, REQUEUE, State
from .storage import Storage, Waker, open_storage

if TYPE_CHECKING:
    from .server import Server

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type[Any])


def _epoch(value: dt.datetime) -> float:
    if value.tzinfo is None:
        raise JobArgumentError(f"at={value!r} is a naive datetime; give it a time zone")
    return value.timestamp()


def _clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    if isinstance(tags, str):
        raise JobArgumentError("tags must be a list of strings, not one string")
    out = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 200:
            raise JobArgumentError(f"tag {tag!r} must be a non-empty string of at most 200 chars")
        out.append(tag.strip())
    return tuple(dict.fromkeys(out))


class JobEngine:
    """A job engine over one storage: the object ``diquis worker --app`` points at."""

    def __init__(
        self,
        storage: str | Storage = "sqlite:///.diquis/jobs.db",
        *,
        clock: Callable[[], float] = time.time,
        activator: Activator = default_activator,
        retry: RetryPolicy | None = None,
        default_queue: str = "default",
        succeeded_ttl: float = 86400.0,
        deleted_ttl: float = 86400.0,
        misfire_grace: float = 60.0,
        migrate: bool = True,
    ) -> None:
        self._storage_spec = storage
        self._storage: Storage | None = storage if isinstance(storage, Storage) else None
        self._open_lock = threading.Lock()
        self._migrate = migrate
        self.clock = clock
        self.activator = activator
        self.retry = retry or RetryPolicy()
        self.default_queue = default_queue
        self.succeeded_ttl = succeeded_ttl
        self.deleted_ttl = deleted_ttl
        self.misfire_grace = misfire_grace
        self.registry = Registry()
        self.filters: list[JobFilter] = []
        self.recurring = RecurringJobs(self)
        self._wakers: set[Waker] = set()  # idle servers of this process, poked on enqueue
        self._migrated = False
        self._committer = GroupCommitter(
            lambda jobs: self.storage.create_jobs_nowait(jobs, self.now()),
            lambda jobs: self.storage.acreate_jobs(jobs, self.now()),
            lambda jobs: self.storage.create_jobs(jobs, self.now()),
            self._after_batch,
            lambda: self.storage.group_writers,
        )

    # -- storage ------------------------------------------------------------------------

    @property
    def storage(self) -> Storage:
        """The storage, opened (and its schema brought up to date) on first use."""
        if self._storage is None or (self._migrate and not self._migrated):
            with self._open_lock:
                if self._storage is None:
                    assert isinstance(self._storage_spec, str)
                    self._storage = open_storage(self._storage_spec)
                if self._migrate and not self._migrated:
                    self._storage.migrate()
                    self._migrated = True
        return self._storage

    @property
    def monitoring(self) -> MonitoringApi:
        """The read-only queries over this engine's jobs (what a dashboard reads)."""
        return self.storage.monitoring

    def close(self) -> None:
        """Write the async enqueues still queued, then close the storage's connections."""
        self._committer.close()
        if self._storage is not None:
            self._storage.close()

    def now(self) -> float:
        """The engine clock, epoch seconds."""
        return self.clock()

    # -- registration -------------------------------------------------------------------

    @overload
    def job(self, func: F) -> F: ...

    @overload
    def job(
        self,
        func: None = None,
        *,
        name: str | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        mutex: str | None = None,
        limit: int | None = None,
        rate_limit: str | None = None,
        rate_key: str | None = None,
        partition: str | None = None,
    ) -> Callable[[F], F]: ...

    def job(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        mutex: str | None = None,
        limit: int | None = None,
        rate_limit: str | None = None,
        rate_key: str | None = None,
        partition: str | None = None,
    ) -> F | Callable[[F], F]:
        """Register a function (async or sync) as a job target; use bare or with options.

        ``mutex``, ``rate_key`` and ``partition`` are ``str.format`` templates over the
        job's arguments (``"tenant:{tenant_id}"``); ``limit`` caps the target's running jobs
        and ``rate_limit`` (``"10/minute"``) its starts, across all servers.
        """
        rules = Concurrency(mutex, limit, rate_limit, rate_key, partition)

        def register(f: F) -> F:
            self.registry.add_function(f, name=name, queue=queue, retry=retry, concurrency=rules)
            return f

        return register(func) if func is not None else register

    def register_class(
        self,
        cls: C,
        *,
        methods: list[str] | None = None,
        factory: Callable[[], Any] | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
        mutex: str | None = None,
        limit: int | None = None,
        rate_limit: str | None = None,
        rate_key: str | None = None,
        partition: str | None = None,
    ) -> C:
        """Register methods of a class built per run by ``factory`` (or the engine's activator)."""
        self.registry.add_class(
            cls,
            methods=methods,
            factory=factory,
            queue=queue,
            retry=retry,
            prefix=name,
            concurrency=Concurrency(mutex, limit, rate_limit, rate_key, partition),
        )
        return cls

    def queue_limit(self, queue: str, n: int | None) -> None:
        """Run at most ``n`` jobs of ``queue`` at a time across all servers (None: no limit).

        Kept in the job store, so every server obeys it (within a second).
        """
        check_queue_limit(queue, n)
        self.storage.set_queue_limit(queue, n)

    def add_filter(self, job_filter: JobFilter) -> None:
        """Run ``job_filter``'s hooks around every run and state change in this process."""
        self.filters.append(job_filter)

    # -- creating jobs ------------------------------------------------------------------

    def _new_job(
        self,
        target: Callable[..., Any] | str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        state: State,
        queue: str | None,
        tags: Iterable[str],
        unique_key: str | None,
        scheduled_at: float | None = None,
        parent_id: int | None = None,
        on: str | None = None,
        reason: str | None = None,
    ) -> NewJob:
        resolved = self.registry.resolve(target)
        resolved.check_arguments(args, kwargs)
        encoded_args, encoded_kwargs = dumps_args(args, kwargs)
        if unique_key is not None and (not isinstance(unique_key, str) or not unique_key):
            raise JobArgumentError(f"unique_key must be a non-empty string, got {unique_key!r}")
        queue_name = queue or resolved.queue or self.default_queue
        if not isinstance(queue_name, str) or not queue_name.strip():
            raise JobArgumentError(f"queue must be a non-empty string, got {queue_name!r}")
        keys = resolved.concurrency.keys(resolved.name, resolved.signature, args, kwargs)
        return NewJob(
            **keys,
            target=resolved.name,
            args=encoded_args,
            kwargs=encoded_kwargs,
            queue=queue_name,
            state=state,
            reason=reason,
            scheduled_at=scheduled_at,
            tags=_clean_tags(tags),
            unique_key=unique_key,
            parent_id=parent_id,
            continuation_on=on,
        )

    def _create(self, job: NewJob, connection: Any) -> int:
        job_id, created = self.storage.create_job(job, self.now(), connection)
        if created and connection is None and job.state is State.ENQUEUED:
            self.poke()
        return job_id

    def _after_batch(self, jobs: Sequence[NewJob], results: Sequence[Result]) -> None:
        # once per commit: a new Enqueued job, or a continuation (its parent may be done)
        for job, r in zip(jobs, results, strict=True):  # a loop: no generator per commit
            if (
                not isinstance(r, BaseException)
                and r[1]
                and (job.state is State.ENQUEUED or job.parent_id is not None)
            ):
                self.poke()
                return

    async def _asubmit(self, job: NewJob) -> int:
        job_id, _ = await self._committer.submit(job)
        return job_id

    def add_waker(self, waker: Waker) -> None:
        """Have :meth:`poke` wake ``waker`` (a server of this process, while it runs)."""
        self._wakers.add(waker)

    def remove_waker(self, waker: Waker) -> None:
        """Stop poking ``waker``."""
        self._wakers.discard(waker)

    def poke(self) -> None:
        """Wake this process's idle servers (a job was just enqueued here)."""
        for waker in list(self._wakers):
            waker.poke()

    def enqueue(
        self,
        target: Callable[..., Any] | str,
        /,
        *args: Any,
        queue: str | None = None,
        tags: Iterable[str] = (),
        unique_key: str | None = None,
        connection: Any = None,
        **kwargs: Any,
    ) -> int:
        """Create a fire-and-forget job; returns its id (a live duplicate's for a taken key).

        With ``connection`` (sqlite3, psycopg, or SQLAlchemy over one) the job is written in
        the caller's open transaction and exists only if the caller commits.
        """
        job = self._new_job(
            target,
            args,
            kwargs,
            state=State.ENQUEUED,
            queue=queue,
            tags=tags,
            unique_key=unique_key,
        )
        return self._create(job, connection)

    def schedule(
        self,
        target: Callable[..., Any] | str,
        /,
        *args: Any,
        delay: float | dt.timedelta | None = None,
        at: dt.datetime | None = None,
        queue: str | None = None,
        tags: Iterable[str] = (),
        unique_key: str | None = None,
        connection: Any = None,
        **kwargs: Any,
    ) -> int:
        """Create a job that runs after ``delay`` (seconds or timedelta) or ``at`` a time."""
        job = self._scheduled_job(target, args, kwargs, delay, at, queue, tags, unique_key)
        return self._create(job, connection)

    def _scheduled_job(
        self,
        target: Callable[..., Any] | str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        delay: float | dt.timedelta | None,
        at: dt.datetime | None,
        queue: str | None,
        tags: Iterable[str],
        unique_key: str | None,
    ) -> NewJob:
        if (delay is None) == (at is None):
            raise JobArgumentError("schedule() needs exactly one of delay= or at=")
        if delay is not None:
            seconds = delay.total_seconds() if isinstance(delay, dt.timedelta) else float(delay)
            when = self.now() + seconds
        else:
            assert at is not None
            when = _epoch(at)
        return self._new_job(
            target,
            args,
            kwargs,
            state=State.SCHEDULED,
            queue=queue,
            tags=tags,
            unique_key=unique_key,
            scheduled_at=when,
            reason=f"Scheduled for {dt.datetime.fromtimestamp(when, dt.UTC).isoformat()}",
        )

    def continue_with(
        self,
        parent_id: int,
        target: Callable[..., Any] | str,
        /,
        *args: Any,
        on: str = "succeeded",
        queue: str | None = None,
        tags: Iterable[str] = (),
        unique_key: str | None = None,
        connection: Any = None,
        **kwargs: Any,
    ) -> int:
        """Create a job that starts when ``parent_id`` succeeds (``on="any"``: ends any way)."""
        job = self._continuation_job(parent_id, target, args, kwargs, on, queue, tags, unique_key)
        job_id = self._create(job, connection)
        if connection is None:
            self.poke()
        return job_id

    def _continuation_job(
        self,
        parent_id: int,
        target: Callable[..., Any] | str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on: str,
        queue: str | None,
        tags: Iterable[str],
        unique_key: str | None,
    ) -> NewJob:
        if on not in ("succeeded", "any"):
            raise JobArgumentError(f"on= must be 'succeeded' or 'any', got {on!r}")
        return self._new_job(
            target,
            args,
            kwargs,
            state=State.AWAITING,
            queue=queue,
            tags=tags,
            unique_key=unique_key,
            parent_id=int(parent_id),
            on=on,
        )

    async def aenqueue(
        self,
        target: Callable[..., Any] | str,
        /,
        *args: Any,
        queue: str | None = None,
        tags: Iterable[str] = (),
        unique_key: str | None = None,
        connection: Any = None,
        **kwargs: Any,
    ) -> int:
        """:meth:`enqueue` for async code; ``connection`` may be a psycopg AsyncConnection.

        Without ``connection``, concurrent calls share commits (see :mod:`.enqueuer`);
        each returns once its own job is durable.
        """
        job = self._new_job(
            target,
            args,
            kwargs,
            state=State.ENQUEUED,
            queue=queue,
            tags=tags,
            unique_key=unique_key,
        )
        if connection is None:
            return await self._asubmit(job)
        if _is_async_connection(connection):
            return await self._acreate(job, connection)
        return await asyncio.to_thread(self._create, job, connection)

    async def _acreate(self, job: NewJob, connection: Any) -> int:
        job_id, _ = await self.storage.acreate_job(connection, job, self.now())
        return int(job_id)

    async def aschedule(
        self,
        target: Callable[..., Any] | str,
        /,
        *args: Any,
        delay: float | dt.timedelta | None = None,
        at: dt.datetime | None = None,
        queue: str | None = None,
        tags: Iterable[str] = (),
        unique_key: str | None = None,
        **kwargs: Any,
    ) -> int:
        """:meth:`schedule` for async code (concurrent calls share commits, as aenqueue's)."""
        job = self._scheduled_job(target, args, kwargs, delay, at, queue, tags, unique_key)
        return await self._asubmit(job)

    async def acontinue_with(
        self,
        parent_id: int,
        target: Callable[..., Any] | str,
        /,
        *args: Any,
        on: str = "succeeded",
        queue: str | None = None,
        tags: Iterable[str] = (),
        unique_key: str | None = None,
        **kwargs: Any,
    ) -> int:
        """:meth:`continue_with` for async code (concurrent calls share commits)."""
        job = self._continuation_job(parent_id, target, args, kwargs, on, queue, tags, unique_key)
        return await self._asubmit(job)

    # -- steering jobs ------------------------------------------------------------------

    # -- batches --------------------------------------------------------------------------

    def batch(self, *, after: int | None = None, on: str = "succeeded") -> BatchBuilder:
        """A new batch: ``with jobs.batch() as b: b.enqueue(...)`` creates its jobs at once.

        With ``after``, the batch is a continuation: its jobs wait until batch ``after``
        has finished (``on="succeeded"``: and succeeded; ``"any"``: in any state).
        """
        _check_on(on)
        return BatchBuilder(self, self.storage.open_batch(self.now(), after, on), fresh=True)

    def attach(self, batch_id: int) -> BatchBuilder:
        """Add jobs to an open batch: ``with jobs.attach(batch_id) as b: b.enqueue(...)``."""
        if self.storage.get_batch(batch_id) is None:
            raise JobNotFoundError(f"batch {batch_id} does not exist")
        return BatchBuilder(self, batch_id, fresh=False)

    def continue_batch_with(
        self,
        batch_id: int,
        target: Callable[..., Any] | str,
        /,
        *args: Any,
        on: str = "succeeded",
        queue: str | None = None,
        tags: Iterable[str] = (),
        **kwargs: Any,
    ) -> int:
        """A job that runs once every job of the batch Succeeded (``on="any"``: finished)."""
        _check_on(on)
        job = self._new_job(
            target,
            args,
            kwargs,
            state=State.AWAITING,
            queue=queue,
            tags=tags,
            unique_key=None,
            on=on,
        )
        return self._create(replace(job, parent_batch_id=batch_id), None)

    def cancel_batch(self, batch_id: int, reason: str = "Batch cancelled") -> list[int]:
        """Cancel a batch: its unfinished jobs are deleted (running ones cancelled); their ids."""
        now = self.now()
        ids = self.storage.cancel_batch(batch_id, now, reason, expire_at=now + self.deleted_ttl)
        for job_id in ids:
            self._notify_filters(job_id, State.DELETED, reason)
        return ids

    def get_batch(self, batch_id: int) -> Batch:
        """A batch with its state, counts and progress; JobNotFoundError if it does not exist."""
        batch = self.storage.get_batch(batch_id)
        if batch is None:
            raise JobNotFoundError(f"batch {batch_id} does not exist")
        return batch

    def get(self, job_id: int) -> Job:
        """A job with its state history; JobNotFoundError if there is none."""
        job = self.storage.get_job(int(job_id))
        if job is None:
            raise JobNotFoundError(f"job {job_id} does not exist")
        return job

    async def aget(self, job_id: int) -> Job:
        """:meth:`get` for async code."""
        return await asyncio.to_thread(self.get, job_id)

    def requeue(self, job_id: int, reason: str = "Requeued by hand") -> State:
        """Enqueue a job again now (from Failed, Succeeded, Deleted, Scheduled, Awaiting)."""
        previous = self.storage.change_state(int(job_id), REQUEUE, self.now(), reason)
        self.poke()
        self._notify_filters(int(job_id), State.ENQUEUED, reason)
        return previous

    def delete(self, job_id: int, reason: str = "Deleted by hand") -> State:
        """Delete a job; a Processing one is cancelled (async: CancelledError; sync: token)."""
        now = self.now()
        previous = self.storage.change_state(
            int(job_id), DELETE, now, reason, expire_at=now + self.deleted_ttl
        )
        self._notify_filters(int(job_id), State.DELETED, reason)
        return previous

    async def arequeue(self, job_id: int, reason: str = "Requeued by hand") -> State:
        """:meth:`requeue` for async code."""
        return await asyncio.to_thread(self.requeue, job_id, reason)

    async def adelete(self, job_id: int, reason: str = "Deleted by hand") -> State:
        """:meth:`delete` for async code."""
        return await asyncio.to_thread(self.delete, job_id, reason)

    def _notify_filters(self, job_id: int, state: State, reason: str | None) -> None:
        for f in self.filters:
            f.on_state_change(job_id, state, reason)

    def state_changes(self, poll_interval: float = 0.05) -> AsyncIterator[StateChange]:
        """Every job state change from any process, as committed (the cross-process feed)."""
        return self.storage.state_changes(poll_interval)

    # -- servers ------------------------------------------------------------------------

    def server(self, **options: Any) -> Server:
        """A job server over this engine (see :class:`diquis.jobs.server.Server`)."""
        from .server import Server

        return Server(self, **options)

    async def drain(self, *, queues: Iterable[str] | None = None, concurrency: int = 10) -> int:
        """Run every job that is due now, inline, until none is left; how many ran (tests)."""
        server = self.server(queues=list(queues or [self.default_queue]), concurrency=concurrency)
        return await server.drain()


def _check_on(on: str) -> None:
    if on not in ("succeeded", "any"):
        raise JobArgumentError(f"on must be 'succeeded' or 'any', got {on!r}")


def _is_async_connection(connection: Any) -> bool:
    if asyncio.iscoroutinefunction(getattr(connection, "execute", None)):
        return True
    return type(connection).__name__ == "AsyncConnection"
