"""Durable background jobs with Hangfire's semantics, on SQLite or PostgreSQL.

>>> jobs = JobEngine("sqlite:///.diquis/jobs.db")
>>> @jobs.job
... async def send_welcome(user_id: int) -> None: ...
>>> job_id = jobs.enqueue(send_welcome, 42)
"""

from .context import JobCancelledError, JobContext, JobFilter, current_job
from .cron import Cron, CronError
from .engine import JobEngine
from .errors import (
    ConfigurationError,
    DuplicateJobError,
    InvalidStateError,
    JobArgumentError,
    JobError,
    JobNotFoundError,
    UnknownTargetError,
)
from .model import Batch, Job, RecurringJob, ServerInfo, StateChange, StateRecord
from .monitoring import MonitoringApi
from .recurring import RecurringJobs
from .retry import NO_RETRY, RetryPolicy, hangfire_backoff
from .server import Server
from .states import BatchState, State
from .storage import Storage, open_storage

__all__ = [
    "NO_RETRY",
    "Batch",
    "BatchState",
    "ConfigurationError",
    "Cron",
    "CronError",
    "DuplicateJobError",
    "InvalidStateError",
    "Job",
    "JobArgumentError",
    "JobCancelledError",
    "JobContext",
    "JobEngine",
    "JobError",
    "JobFilter",
    "JobNotFoundError",
    "MonitoringApi",
    "RecurringJob",
    "RecurringJobs",
    "RetryPolicy",
    "Server",
    "ServerInfo",
    "State",
    "StateChange",
    "StateRecord",
    "Storage",
    "UnknownTargetError",
    "current_job",
    "hangfire_backoff",
    "open_storage",
]
