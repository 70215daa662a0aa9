"""Creating a tenant: its row and its provisioning job commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diquis.app import Diquis
from diquis.settings import Settings
from diquis.tenancy.domain import DuplicateTenantError


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Diquis]:
    diquis = Diquis(
        Settings.from_env(
            {
                "DIQUIS_DATA_DIR": str(tmp_path / "data"),
                "DIQUIS_DATABASE_URL": database_url,
                "DIQUIS_SECRET_KEY": "x" * 40,
                "DIQUIS_DEV": "1",
            }
        )
    )
    diquis.migrate()
    yield diquis
    diquis.close()


def jobs_tagged(app: Diquis, slug: str) -> int:
    return app.jobs.monitoring.count_jobs(tag=f"tenant:{slug}")


async def test_the_tenant_row_carries_its_committed_job(app: Diquis) -> None:
    started = await app.tenant_service.create("Acme Corp", "admin@acme.test", None)
    assert started.tenant.job_id == started.job_id
    stored = await app.tenants.get(started.tenant.id)
    assert stored is not None and stored.job_id == started.job_id
    job = app.jobs.get(int(started.job_id))
    assert job.tags == (f"tenant:{started.tenant.slug}",)
    assert jobs_tagged(app, started.tenant.slug) == 1


async def test_a_taken_name_rolls_its_job_back(app: Diquis) -> None:
    first = await app.tenant_service.create("Acme Corp", "admin@acme.test", None)
    with pytest.raises(DuplicateTenantError):
        await app.tenant_service.create("Acme Corp", "other@acme.test", None)
    assert jobs_tagged(app, first.tenant.slug) == 1
    assert app.jobs.monitoring.count_jobs() == 1


async def test_a_failure_after_the_job_leaves_neither(
    app: Diquis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_add(*_: Any) -> None:
        raise RuntimeError("the catalog write failed")

    monkeypatch.setattr(app.tenants, "add", broken_add)
    with pytest.raises(RuntimeError, match="catalog write failed"):
        await app.tenant_service.create("Acme Corp", "admin@acme.test", None)
    assert app.jobs.monitoring.count_jobs() == 0
    assert (await app.tenants.list(10, 0))[1] == 0


async def test_a_failed_enqueue_leaves_no_tenant(
    app: Diquis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_enqueue(*_: Any, **__: Any) -> int:
        raise RuntimeError("the job insert failed")

    monkeypatch.setattr(app.jobs, "enqueue", broken_enqueue)
    with pytest.raises(RuntimeError, match="job insert failed"):
        await app.tenant_service.create("Acme Corp", "admin@acme.test", None)
    assert (await app.tenants.list(10, 0))[1] == 0
