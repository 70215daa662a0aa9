"""Provisioning converges: concurrent migrations, cancellation, retries, the reconciler,
foreign databases, sign-up races and a saturated catalog — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine, func, inspect, select, text

from diquis.jobs import JobEngine, State
from diquis.tenancy.infrastructure import migrations
from diquis.tenancy.infrastructure.db import (
    Catalog,
    DatabaseBusyError,
    make_engine,
    sqlalchemy_url,
    tenants,
)
from diquis.tenancy.infrastructure.tenant_databases import MARKER_TABLE
from tests.support.wait import eventually

from .conftest import AppFactory, Running, listening

METRICS_TOKEN = "convergence-metrics-token"


def _tables(run: Running, slug: str) -> set[str]:
    engine = create_engine(sqlalchemy_url(run.app.tenant_databases.url(slug)))
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


async def _create(run: Running, name: str, email: str) -> dict[str, Any]:
    async with run.client(run.admin_token) as api:
        reply = await api.post("/api/tenants", json={"name": name, "admin_email": email})
    assert reply.status_code == 202, reply.text
    body: dict[str, Any] = reply.json()
    return body


# -- 1. concurrent migrations -----------------------------------------------------------


def test_tenant_migrations_running_at_once_in_one_process_each_get_their_tables(
    start_app: AppFactory,
) -> None:
    """Alembic's context is process-global: without one run at a time, they crossed."""
    with start_app() as run:
        dbs = run.app.tenant_databases
        slugs = [f"mig-{i}" for i in range(12)]
        for slug in slugs:
            dbs.ensure(slug, str(uuid.uuid4()))
        start = threading.Barrier(len(slugs))
        errors: list[BaseException] = []

        def upgrade(slug: str) -> None:
            start.wait()
            try:
                dbs.upgrade(slug)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=upgrade, args=(s,)) for s in slugs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for slug in slugs:
            assert {"tenant_settings", "audit_log"} <= _tables(run, slug), slug
        dbs.drop_all(slugs)


def test_the_tenant_schema_is_exactly_what_the_repair_checks_for(start_app: AppFactory) -> None:
    with start_app() as run:
        dbs = run.app.tenant_databases
        dbs.ensure("fresh", str(uuid.uuid4()))
        dbs.upgrade("fresh")
        ours = {MARKER_TABLE, migrations.TENANT_VERSION_TABLE}
        assert _tables(run, "fresh") - ours == migrations.SCHEMA_TABLES["tenant"]
        dbs.drop_all(["fresh"])


def test_a_rerun_repairs_a_database_stamped_as_migrated_without_its_tables(
    start_app: AppFactory,
) -> None:
    with start_app() as run:
        dbs = run.app.tenant_databases
        dbs.ensure("half", str(uuid.uuid4()))
        dbs.upgrade("half")
        engine = make_engine(dbs.url("half"))
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE audit_log"))
        assert migrations.current(engine, "tenant") is not None  # stamped, table gone
        engine.dispose()
        dbs.upgrade("half")
        assert {"tenant_settings", "audit_log"} <= _tables(run, "half")
        dbs.drop_all(["half"])


# -- 2. cancellation and retry ----------------------------------------------------------


async def test_cancelling_a_running_provisioning_job_fails_the_tenant_and_retry_converges(
    start_app: AppFactory,
) -> None:
    with start_app(DIQUIS_DEMO_STEP_DELAY="0.4") as run:
        async with listening(run.base, run.admin_token) as hub, run.client(run.admin_token) as api:
            body = await _create(run, "Umbrella", "a@umbrella.test")
            await run.wait_status(body["id"], "Provisioning")
            job_id = int(body["job_id"])
            # as the dashboard's "Cancel and delete" does, from a thread of the web process
            await asyncio.to_thread(run.app.jobs.delete, job_id, "Cancelled from the dashboard")
            failed = await run.wait_status(body["id"], "Failed")
            assert failed["last_error"] == "Provisioning was cancelled"
            await hub.wait_for(lambda: any(a[0] == "Error" for a in hub.of("ReceiveNotification")))
            [error] = [a for a in hub.of("ReceiveNotification") if a[0] == "Error"]
            assert error[1] == "Provisioning failed: Umbrella: Provisioning was cancelled"
            retried = await api.post(f"/api/tenants/{body['id']}/retry")
            assert retried.status_code == 202, retried.text
            # while its job is queued or running, another retry is refused
            assert (await api.post(f"/api/tenants/{body['id']}/retry")).status_code == 409
            await run.wait_status(body["id"], "Active", timeout=20)
            assert (await api.post(f"/api/tenants/{body['id']}/retry")).status_code == 409
        await eventually(
            lambda: run.app.jobs.get(job_id).state is State.SUCCEEDED, what="job done", timeout=15
        )
        assert len(run.mailbox.to("a@umbrella.test")) == 1


async def test_two_provisioning_jobs_for_one_tenant_never_run_at_once(
    start_app: AppFactory,
) -> None:
    with start_app(DIQUIS_DEMO_STEP_DELAY="0.3") as run:
        body = await _create(run, "Initech", "p@initech.test")
        first = int(body["job_id"])
        await run.wait_status(body["id"], "Provisioning")
        # a second run for the same tenant (as a hand enqueue next to a retry would make)
        second = run.app.jobs.enqueue("tenancy.ProvisionTenantJob.execute", body["id"], None)
        await asyncio.sleep(0.5)
        assert run.app.jobs.get(first).state is State.PROCESSING
        assert run.app.jobs.get(second).state is State.ENQUEUED  # waits on the tenant's mutex
        for job_id in (first, second):
            await eventually(
                lambda j=job_id: run.app.jobs.get(j).state is State.SUCCEEDED,  # type: ignore[misc]
                what="both runs",
                timeout=20,
            )
        a, b = run.app.jobs.get(first), run.app.jobs.get(second)
        assert a.finished_at is not None and b.started_at is not None
        # a claim reads its clock before it waits for the finishing write's lock: allow for
        # that skew (a real overlap would be a whole provisioning run, about a second here)
        assert b.started_at >= a.finished_at - dt.timedelta(seconds=0.2)


async def test_retry_brings_a_scheduled_retry_forward(start_app: AppFactory) -> None:
    with start_app(DIQUIS_FAULTS="seed:1") as run:
        body = await _create(run, "Hooli", "g@hooli.test")
        job_id = int(body["job_id"])
        await run.wait_status(body["id"], "Failed")
        await eventually(
            lambda: run.app.jobs.get(job_id).state is State.SCHEDULED, what="retry", timeout=15
        )
        async with run.client(run.admin_token) as api:
            assert (await api.post(f"/api/tenants/{body['id']}/retry")).status_code == 202
        await run.wait_status(body["id"], "Active")


# -- 3. the reconciler ------------------------------------------------------------------


async def test_the_reconciler_repairs_tenants_whose_job_vanished_and_counts_it(
    start_app: AppFactory, database_url: str
) -> None:
    with start_app(DIQUIS_DEMO_STEP_DELAY="1", DIQUIS_METRICS_TOKEN=METRICS_TOKEN) as run:
        deleted = await _create(run, "Vandelay", "art@vandelay.test")
        missing = await _create(run, "Kramerica", "k@kramerica.test")
        await run.wait_status(deleted["id"], "Provisioning")
        # another process (no repair hook here) deletes one job; the other row vanishes
        other = JobEngine(database_url)
        other.delete(int(deleted["job_id"]), "Deleted elsewhere")
        other.close()
        await run.app.catalog.run(
            lambda c: c.execute(
                tenants.update().where(tenants.c.id == missing["id"]).values(job_id="999999999")
            )
        )
        made = await run.app.reconciler.run()
        assert made == {"cancelled": 1, "job_missing": 1}
        assert (await run.app.reconciler.run()) == {}  # idempotent
        failed = await run.wait_status(deleted["id"], "Failed")
        assert failed["last_error"] == "Provisioning was cancelled"
        metrics = httpx.get(
            f"{run.base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        ).text
        assert 'diquis_tenant_repairs_total{kind="cancelled"} 1.0' in metrics
        assert 'diquis_tenant_repairs_total{kind="job_missing"} 1.0' in metrics
        # the recurring job that runs it once a minute is registered
        assert run.app.jobs.recurring.get("tenancy.reconcile").cron == "* * * * *"
        await run.app.jobs.adelete(int(missing["job_id"]))  # stop its (unlinked) job


async def test_a_tenant_provisioning_for_too_long_is_flagged_stuck(start_app: AppFactory) -> None:
    with start_app(DIQUIS_DEMO_STEP_DELAY="3", DIQUIS_PROVISIONING_STUCK_AFTER="0.5") as run:
        body = await _create(run, "Slowpoke", "s@slow.test")
        await run.wait_status(body["id"], "Provisioning")
        async with run.client(run.admin_token) as api:
            await asyncio.sleep(0.7)
            tenant = (await api.get(f"/api/tenants/{body['id']}")).json()
            assert tenant["stuck"] is True
            listed = (await api.get("/api/tenants")).json()["items"][0]
            assert listed["stuck"] is True
            await run.app.jobs.adelete(int(body["job_id"]))


# -- 4. foreign databases ---------------------------------------------------------------


def _make_foreign(run: Running, slug: str) -> None:
    dbs = run.app.tenant_databases
    if dbs.postgres:
        with psycopg.connect(dbs.catalog_url, autocommit=True) as conn:
            name = sql.Identifier(dbs.database_name(slug))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        with psycopg.connect(sqlalchemy_url(dbs.url(slug)).replace("+psycopg", "")) as conn:
            conn.execute("CREATE TABLE payroll (id int)")
    else:
        dbs.folder.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(dbs.folder / dbs.database_name(slug)) as conn:
            conn.execute("CREATE TABLE payroll (id int)")


async def test_a_database_that_is_not_ours_is_never_adopted_and_delete_leaves_it(
    start_app: AppFactory,
) -> None:
    with start_app() as run:
        _make_foreign(run, "wayne-enterprises")
        async with run.client() as anonymous:
            reply = await anonymous.post(
                "/api/signup", json={"organization": "Wayne Enterprises", "email": "b@wayne.test"}
            )
            assert reply.status_code == 202
        [tenant] = (await run.app.tenants.list(10, 0))[0]
        failed = await run.wait_status(tenant.id, "Failed")
        assert "does not belong to this installation" in failed["last_error"]
        assert run.app.tenant_databases.database_name("wayne-enterprises") in failed["last_error"]
        await eventually(
            lambda: run.app.jobs.get(int(failed["job_id"])).state is State.FAILED, timeout=15
        )
        assert _tables(run, "wayne-enterprises") == {"payroll"}  # untouched, not retried
        async with run.client(run.admin_token) as api:
            assert (await api.delete(f"/api/tenants/{tenant.id}")).status_code == 204
            assert (await api.get(f"/api/tenants/{tenant.id}")).status_code == 404
        assert run.app.tenant_databases.exists("wayne-enterprises")  # not ours: not dropped
        run.app.tenant_databases.drop_all(["wayne-enterprises"])


async def test_delete_drops_our_database_and_frees_the_name(start_app: AppFactory) -> None:
    with start_app() as run:
        body = await _create(run, "Pied Piper", "r@pp.test")
        await run.wait_status(body["id"], "Active")
        await eventually(
            lambda: run.app.jobs.get(int(body["job_id"])).state is State.SUCCEEDED, timeout=15
        )
        async with run.client(run.admin_token) as api:
            assert (await api.delete(f"/api/tenants/{body['id']}")).status_code == 204
            assert (await api.delete(f"/api/tenants/{body['id']}")).status_code == 404
        assert not run.app.tenant_databases.exists("pied-piper")
        again = await _create(run, "Pied Piper", "r@pp.test")  # the name and e-mail are free
        await run.wait_status(again["id"], "Active")


async def test_delete_is_refused_while_the_job_is_queued_or_running(start_app: AppFactory) -> None:
    with start_app(DIQUIS_DEMO_STEP_DELAY="2") as run:
        body = await _create(run, "Soylent", "s@soylent.test")
        await run.wait_status(body["id"], "Provisioning")
        async with run.client(run.admin_token) as api:
            reply = await api.delete(f"/api/tenants/{body['id']}")
            assert reply.status_code == 409 and "Processing" in reply.json()["detail"]
            await run.app.jobs.adelete(int(body["job_id"]))
            await run.wait_status(body["id"], "Failed")
            assert (await api.delete(f"/api/tenants/{body['id']}")).status_code == 204


async def test_a_crash_between_create_database_and_the_marker_still_converges(
    start_app: AppFactory,
) -> None:
    with start_app() as run:
        dbs = run.app.tenant_databases
        body = await _create(run, "Oscorp", "n@oscorp.test")
        await run.wait_status(body["id"], "Active")
        # the same state by hand for a second tenant: claimed and created, no marker yet
        tenant_id = str(uuid.uuid4())
        dbs._claim(dbs.database_name("lexcorp"), tenant_id)
        dbs._create(dbs.database_name("lexcorp"))
        dbs.ensure("lexcorp", tenant_id)
        assert dbs.owns("lexcorp", tenant_id)
        assert not dbs.owns("lexcorp", str(uuid.uuid4()))
        dbs.drop_all(["lexcorp"])


def test_migrate_stamps_tenant_databases_made_before_markers(start_app: AppFactory) -> None:
    with start_app() as run:
        reply = httpx.post(
            f"{run.base}/api/tenants", json={"name": "Cyberdyne", "admin_email": "m@cd.test"},
            headers={"Authorization": f"Bearer {run.admin_token}"},
        )  # fmt: skip
        tenant_id = reply.json()["id"]
        asyncio.run(run.wait_status(tenant_id, "Active"))
        dbs = run.app.tenant_databases
        engine = make_engine(dbs.url("cyberdyne"))
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {MARKER_TABLE}"))  # as made by an older version
        engine.dispose()
        assert not dbs.owns("cyberdyne", tenant_id)
        assert run.app.migrate(tenants=True) == ["cyberdyne"]
        assert dbs.owns("cyberdyne", tenant_id)


# -- 5. sign-up races -------------------------------------------------------------------


async def test_two_signups_racing_with_one_new_email_make_one_tenant(
    start_app: AppFactory,
) -> None:
    with start_app(DIQUIS_DEMO_STEP_DELAY="0.5") as run:
        async with run.client() as anonymous:
            replies = await asyncio.gather(
                *(
                    anonymous.post(
                        "/api/signup", json={"organization": f"Race {i}", "email": "x@race.test"}
                    )
                    for i in range(4)  # within the per-client sign-up limit
                )
            )
        assert {r.status_code for r in replies} == {202}
        assert len({r.text for r in replies}) == 1  # the same body, whoever won
        count = await run.app.catalog.run(
            lambda c: c.execute(
                select(func.count())
                .select_from(tenants)
                .where(tenants.c.admin_email == "x@race.test")
            ).scalar_one()
        )
        assert count == 1
        [tenant] = (await run.app.tenants.list(10, 0))[0]
        await run.wait_status(tenant.id, "Active")
        # the address's owner is told, by e-mail, that someone else tried it too
        await eventually(
            lambda: any(
                m["Subject"] == "Someone tried to sign up with your address"
                for m in run.mailbox.to("x@race.test")
            ),
            what="the sign-up notice",
            timeout=15,
        )
        # the super admin's own form still says why
        async with run.client(run.admin_token) as api:
            taken = await api.post(
                "/api/tenants", json={"name": "Race 9", "admin_email": "x@race.test"}
            )
        assert taken.status_code == 422 and taken.json()["detail"][0]["loc"][-1] == "admin_email"


# -- 6. a saturated catalog -------------------------------------------------------------


async def test_fifty_concurrent_creates_on_a_small_pool_never_hang_or_fail(
    start_app: AppFactory,
) -> None:
    """The default executor has ~6 threads; with a bigger pool they used to deadlock."""
    with start_app(DIQUIS_DB_POOL_SIZE="2", DIQUIS_DB_MAX_OVERFLOW="1") as run:
        async with run.client(run.admin_token) as api:
            api.timeout = httpx.Timeout(30)
            started = time.monotonic()
            replies = await asyncio.gather(
                *(
                    api.post(
                        "/api/tenants", json={"name": f"Load {i}", "admin_email": f"l{i}@x.test"}
                    )
                    for i in range(50)
                )
            )
            elapsed = time.monotonic() - started
        assert [r.status_code for r in replies] == [202] * 50, replies[0].text
        assert elapsed < 20
        # and the in-process worker (concurrency 10) provisions them all side by side
        ids = [r.json()["id"] for r in replies]

        async def all_active() -> bool:
            found = await run.app.catalog.run(
                lambda c: c.execute(
                    select(tenants.c.status, func.count()).group_by(tenants.c.status)
                ).all()
            )
            return dict(found) == {"Active": len(ids)}  # type: ignore[arg-type]

        deadline = time.monotonic() + 90
        while not await all_active():
            assert time.monotonic() < deadline, "not all tenants became Active"
            await asyncio.sleep(0.2)
        for i in (0, 25, 49):
            assert {"tenant_settings", "audit_log"} <= _tables(run, f"load-{i}")


async def test_a_caller_that_cannot_get_a_catalog_connection_gets_busy_not_a_hang(
    database_url: str,
) -> None:
    catalog = Catalog(database_url, pool_size=1, max_overflow=0, wait_timeout=0.2)
    try:
        async with catalog.begin():
            started = time.monotonic()
            with pytest.raises(DatabaseBusyError, match="no catalog connection"):
                await catalog.run(lambda c: c.execute(text("SELECT 1")))
            assert time.monotonic() - started < 2
        assert await catalog.run(lambda c: c.execute(text("SELECT 1")).scalar()) == 1
    finally:
        catalog.dispose()
