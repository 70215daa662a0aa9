"""Public names, pinned; the async client API; the in-memory store for users' own tests."""

from __future__ import annotations

import pytest

import diquis
import diquis.jobs
import diquis.jobs.storage
import diquis.jobs.testing
from diquis.jobs import ConfigurationError, JobEngine, State
from diquis.jobs.testing import MemoryStorage

from . import targets


def test_public_names() -> None:
    assert set(diquis.jobs.__all__) == {
        "NO_RETRY", "Batch", "BatchState", "ConfigurationError", "Cron", "CronError",
        "DuplicateJobError",
        "InvalidStateError", "Job", "JobArgumentError", "JobCancelledError", "JobContext",
        "JobEngine", "JobError", "JobFilter", "JobNotFoundError", "MonitoringApi",
        "RecurringJob", "RecurringJobs", "RetryPolicy", "Server", "ServerInfo", "State",
        "StateChange", "StateRecord", "Storage", "UnknownTargetError", "current_job",
        "hangfire_backoff", "open_storage",
    }  # fmt: skip
    assert set(diquis.jobs.storage.__all__) == {
        "Connector", "RecurringPlan", "Storage", "Waker", "open_storage",
    }  # fmt: skip
    assert set(diquis.jobs.testing.__all__) == {"MemoryMonitoring", "MemoryStorage"}
    for module in (diquis.jobs, diquis.jobs.storage, diquis.jobs.testing):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
    assert isinstance(diquis.__version__, str)


async def test_the_async_client_api() -> None:
    engine = JobEngine(MemoryStorage())
    targets.register_all(engine)
    parent = await engine.aenqueue(targets.add, 1, 2, tags=["t:1"])
    later = await engine.aschedule(targets.add, 3, 4, delay=3600, queue="default")
    child = await engine.acontinue_with(parent, targets.add, 5, 6, on="any")
    assert (await engine.aget(later)).state is State.SCHEDULED
    assert (await engine.aget(child)).state is State.AWAITING
    assert await engine.adelete(later, "not needed") is State.SCHEDULED
    assert (await engine.aget(later)).reason == "not needed"
    assert await engine.drain() == 2
    assert (await engine.aget(child)).state is State.SUCCEEDED
    assert await engine.arequeue(later) is State.DELETED


def test_a_memory_url_opens_the_in_memory_store() -> None:
    assert isinstance(JobEngine("memory://").storage, MemoryStorage)


def test_an_unsupported_url_is_named_by_its_scheme_without_its_password() -> None:
    with pytest.raises(ConfigurationError, match="scheme 'mysql'") as caught:
        diquis.jobs.open_storage("mysql://app:hunter2-secret@db/app")
    assert "hunter2" not in str(caught.value)
