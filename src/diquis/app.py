"""The composition root: settings -> one ASGI app (API, hub, dashboard, web UI) and jobs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from . import __version__
from .dashboard import Access, create_dashboard
from .hardening import BodyLimit, SecurityHeaders
from .hardening.api_docs import docs_routes
from .identity import SESSION_COOKIE
from .identity.dashboard_access import SuperAdminFromSessionCookie
from .jobs import JobContext, JobEngine, JobFilter, RetryPolicy, State
from .realtime import (
    HubContext,
    HubOptions,
    HubRoute,
    HubServer,
    backplane_from_url,
    publisher_context,
)
from .settings import Settings
from .tenancy.api.routes import build_router
from .tenancy.application.accounts import AccountMailJob, AccountRecovery
from .tenancy.application.provision import ProvisionTenantJob
from .tenancy.application.reconcile import Reconciler
from .tenancy.application.signup import PublicSignup, SignupNoticeJob
from .tenancy.application.use_cases import TenantService
from .tenancy.hub import HUB_NAME, NotificationsHub, token_authenticator
from .tenancy.infrastructure import migrations
from .tenancy.infrastructure.adapters import (
    DELETED_WITH_TENANT,
    EngineJobService,
    EnvFaults,
    RateLimiter,
)
from .tenancy.infrastructure.availability import install_unavailable_handlers
from .tenancy.infrastructure.db import Catalog
from .tenancy.infrastructure.login_throttle import LoginThrottle
from .tenancy.infrastructure.mail import DevMailbox, MailTransport, OutboxMailer, SmtpTransport
from .tenancy.infrastructure.notifier import HubNotifier
from .tenancy.infrastructure.repositories import SqlTenantRepository, SqlUsers
from .tenancy.infrastructure.tenant_databases import ForeignDatabaseError, TenantDatabases
from .tenancy.infrastructure.token_deny_list import TokenDenyList

log = logging.getLogger(__name__)


class _Durations(JobFilter):
    """Feeds the job duration histogram of /metrics from runs in this process."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.started: dict[int, float] = {}

    async def before_perform(self, context: JobContext) -> None:
        self.started[context.job_id] = time.perf_counter()

    async def after_perform(self, context: JobContext, error: BaseException | None) -> None:
        began = self.started.pop(context.job_id, None)
        if began is not None:
            self.histogram.labels(
                target=context.target, outcome="failed" if error else "succeeded"
            ).observe(time.perf_counter() - began)


def _scaled(policy: RetryPolicy, scale: float) -> RetryPolicy:
    """``policy`` with its delays times ``scale`` (DIQUIS_RETRY_DELAY_SCALE)."""
    if scale == 1.0:
        return policy
    return dataclasses.replace(policy, delays=lambda retry: policy.delay(retry) * scale)


class _RepairOnJobEnd(JobFilter):
    """Repairs a tenant right away when its provisioning job is deleted or fails for good.

    ``on_state_change`` runs where the change was made (a worker's outcome writer, or the
    thread of a dashboard or API delete); the repair is async, so it is handed to the
    event loop the app runs on. A process that dies first leaves it to the reconciler.
    """

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    def on_state_change(self, job_id: int, state: State, reason: str | None) -> None:
        if state not in (State.DELETED, State.FAILED) or reason == DELETED_WITH_TENANT:
            return
        coro = self._repair(str(job_id))
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # not on a loop's thread: a delete run in a worker thread
            if self.loop is None or self.loop.is_closed():
                coro.close()  # no app loop here (a script): the reconciler will do it
            else:
                asyncio.run_coroutine_threadsafe(coro, self.loop)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _repair(self, job_id: str) -> object:
        try:
            return await self.reconciler.job_changed(job_id)
        except Exception:
            log.exception("repairing the tenant of job %s failed; the reconciler retries", job_id)
            return None


#: the recurring job that repairs tenants stranded by their job (every minute)
RECONCILE_ID = "tenancy.reconcile"


HUB_MAX_PENDING_NEGOTIATIONS = 10_000


def hub_options(settings: Settings) -> HubOptions:
    """The hub's options under `diquis serve`: stateful reconnect, expiry closes, caps."""
    return HubOptions(
        allow_stateful_reconnect=True,
        close_on_token_expiry=True,
        max_connections_per_user=settings.hub_max_connections_per_user,
        max_pending_negotiations=HUB_MAX_PENDING_NEGOTIATIONS,
    )


class Diquis:
    """Everything wired together; ``diquis worker`` and ``diquis serve`` both build one."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings = settings or Settings.from_env()
        self.catalog = Catalog(
            settings.database_url, pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )  # fmt: skip
        scale = settings.retry_delay_scale
        self.jobs = JobEngine(settings.database_url, retry=_scaled(RetryPolicy(), scale))
        self.token_deny_list = TokenDenyList(self.catalog)
        self.hub = HubServer(
            NotificationsHub, name=HUB_NAME, backplane=settings.backplane_url,
            authenticator=token_authenticator(settings.secret_key,
                                              self.token_deny_list.is_revoked),
            options=hub_options(settings),
        )  # fmt: skip
        self._publisher: HubContext | None = None
        self.serving_http = False
        self.users = SqlUsers(self.catalog)
        self.tenants = SqlTenantRepository(self.catalog)
        self.tenant_databases = TenantDatabases(
            settings.database_url, settings.data_dir, self.catalog, settings.tenant_db_prefix
        )
        self.notifier = HubNotifier(self.catalog, self.users, self.hub_context)
        self.mailbox = DevMailbox(settings.data_dir / "mailbox") if not settings.smtp_url else None
        transport: MailTransport = (
            SmtpTransport(settings.smtp_url, settings.mail_from)
            if settings.smtp_url
            else self.mailbox  # type: ignore[assignment]
        )
        self.mailer = OutboxMailer(self.catalog, transport)
        self.faults = EnvFaults(settings.faults, settings.demo_step_delay)
        job_service = EngineJobService(self.jobs, self.catalog)
        self.tenant_service = TenantService(
            self.catalog, self.tenants, job_service, self.tenant_databases
        )
        self.reconciler = Reconciler(
            self.tenants, job_service, self.notifier, self.mailer, self.users
        )
        self.provisioning_stuck_after = settings.provisioning_stuck_after
        self.signup = PublicSignup(self.tenant_service, self.users, job_service)
        self.accounts = AccountRecovery(self.tenants, job_service)
        self.rate_limiter = RateLimiter(self.catalog)
        self.login_throttle = LoginThrottle(self.catalog)
        self.secret_key = settings.secret_key
        self.dev_mode = settings.dev
        self.token_ttl = settings.token_ttl
        self.secure_cookies = settings.public_url.startswith("https://")
        self.metrics = CollectorRegistry()
        self.job_durations = Histogram(
            "diquis_job_duration_seconds", "Run time of jobs in this process",
            ["target", "outcome"], registry=self.metrics,
        )  # fmt: skip
        self.jobs.add_filter(_Durations(self.job_durations))
        self.repair_on_job_end = _RepairOnJobEnd(self.reconciler)
        self.jobs.add_filter(self.repair_on_job_end)
        self.jobs.register_class(
            ProvisionTenantJob, methods=["execute"], factory=self.provision_job,
            name="tenancy.ProvisionTenantJob",
            # two runs for one tenant (a retry next to a hand requeue) never overlap
            mutex="tenant:{tenant_id}",
            # a database that is not ours stays not ours: retrying cannot help
            retry=_scaled(RetryPolicy(dont_retry_on=(ForeignDatabaseError,)), scale),
        )  # fmt: skip
        self.jobs.job(name=RECONCILE_ID, retry=RetryPolicy(attempts=0))(self.reconcile_tenants)
        self.jobs.register_class(
            SignupNoticeJob, methods=["send"], name="tenancy.SignupNoticeJob",
            factory=lambda: SignupNoticeJob(self.mailer, self.settings.public_url),
        )  # fmt: skip
        self.jobs.register_class(
            AccountMailJob, methods=["reset", "welcome"], name="tenancy.AccountMailJob",
            factory=lambda: AccountMailJob(
                self.users, self.tenants, self.mailer, self.settings.public_url
            ),
        )  # fmt: skip

    # -- wiring -------------------------------------------------------------------------

    def hub_context(self) -> HubContext:
        """The local hub in a web process; a backplane publisher in a worker process."""
        if self.serving_http:
            return self.hub.context
        if self._publisher is None:
            if self.settings.backplane_url.startswith("memory://"):
                log.warning(
                    "this process serves no hub and DIQUIS_BACKPLANE_URL is in-memory: live "
                    "notifications from its jobs reach nobody (they are still stored)"
                )
            self._publisher = publisher_context(
                backplane_from_url(self.settings.backplane_url), HUB_NAME
            )
        return self._publisher

    async def reconcile_tenants(self) -> dict[str, int]:
        """The recurring ``tenancy.reconcile`` job: one round of the reconciler."""
        return await self.reconciler.run()

    def provision_job(self) -> ProvisionTenantJob:
        """A ProvisionTenantJob with its dependencies (the job engine's factory)."""
        return ProvisionTenantJob(
            self.tenants, self.users, self.tenant_databases, self.notifier, self.mailer,
            self.faults, self.settings.public_url,
        )  # fmt: skip

    def migrate(self, tenants: bool = False) -> list[str]:
        """Upgrade the catalog and job tables (and every tenant database); tenant slugs done."""
        migrations.upgrade(self.catalog.engine, "catalog")
        self.jobs.storage.migrate()
        self._private_database_files()
        # once a minute, one run across every process (the engine fires each occurrence once)
        self.jobs.recurring.add_or_update(RECONCILE_ID, RECONCILE_ID, "* * * * *")
        done: list[str] = []
        if tenants:
            for slug, tenant_id in self.tenants.slugs_and_ids():
                if self.tenant_databases.exists(slug):
                    if self.tenant_databases.stamp(slug, tenant_id):
                        log.info("marked the database of tenant %s as this installation's", slug)
                    self.tenant_databases.upgrade(slug)
                    done.append(slug)
        return done

    def _private_database_files(self) -> None:
        """An SQLite catalog (and its WAL files) readable by its owner only."""
        url = self.settings.database_url
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            for file in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
                with contextlib.suppress(FileNotFoundError):
                    file.chmod(0o600)

    def close(self) -> None:
        """Release database connections."""
        self.jobs.close()
        self.catalog.dispose()

    # -- HTTP ---------------------------------------------------------------------------

    def asgi(
        self, *, run_worker: bool = True, worker_options: dict[str, Any] | None = None
    ) -> FastAPI:
        """The whole web app; with ``run_worker`` the job server runs in its lifespan."""
        self.serving_http = True

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            self.repair_on_job_end.loop = asyncio.get_running_loop()
            async with self.hub.lifespan():
                if run_worker:
                    async with self.jobs.server(**(worker_options or {})):
                        yield
                else:
                    yield

        app = FastAPI(
            title="Diquis", version=__version__, lifespan=lifespan, docs_url=None,
            openapi_url="/openapi.json", redoc_url=None,
        )  # fmt: skip
        install_unavailable_handlers(app)
        app.include_router(build_router(self))
        app.router.routes.extend(docs_routes("Diquis"))
        app.router.routes.append(HubRoute("/hubs/notifications", self.hub))
        deny_list = self.token_deny_list

        async def not_logged_out(request: Any) -> Access:
            principal = getattr(request.state, "principal", None)
            revoked = await deny_list.is_revoked(getattr(principal, "token_id", None))
            return Access.UNAUTHENTICATED if revoked else Access.ALLOW

        dashboard = create_dashboard(
            self.jobs, csrf_secret=self.settings.secret_key, base_path="/hangfire",
            authorization=[SuperAdminFromSessionCookie(self.settings.secret_key), not_logged_out],
            session_cookie=SESSION_COOKIE,
            # jobs are tagged tenant:<slug>; the tenant page is keyed by id, the list by slug
            tag_links={"tenant": "/tenants?q={value}"}, app_path="/",
        )  # fmt: skip
        app.router.routes.append(Mount("/hangfire", app=dashboard))

        @app.get("/hangfire", include_in_schema=False)
        async def dashboard_root() -> Response:
            return RedirectResponse("/hangfire/", status_code=308)

        @app.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/readyz", include_in_schema=False)
        async def readyz() -> Response:
            try:
                await self.catalog.run(lambda c: c.execute(text("SELECT 1")))
            except Exception as exc:
                return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
            return JSONResponse({"status": "ready"})

        @app.get("/metrics", include_in_schema=False)
        async def metrics(request: Request) -> Response:
            expected = self.settings.metrics_token
            if expected is None:  # off unless an operator set a token
                return PlainTextResponse("Not Found", status_code=404)
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
                return PlainTextResponse(
                    "metrics need Authorization: Bearer $DIQUIS_METRICS_TOKEN", status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )  # fmt: skip
            return PlainTextResponse(
                generate_latest(self.metrics).decode(), media_type="text/plain; version=0.0.4"
            )

        self._register_gauges()
        web_dir = self.settings.web_dir
        if (web_dir / "index.html").exists():
            app.router.routes.append(Mount("/", app=SpaFiles(directory=web_dir, html=True)))
        else:

            @app.get("/", include_in_schema=False)
            async def no_web() -> PlainTextResponse:
                return PlainTextResponse(
                    f"Diquis API is running; the web app is not built ({web_dir} has no "
                    "index.html). `make demo` builds it. API docs: /docs, dashboard: /hangfire."
                )

        app.add_middleware(BodyLimit, max_bytes=self.settings.max_body_bytes, prefixes=("/api/",))
        app.add_middleware(SecurityHeaders)
        return app

    def _register_gauges(self) -> None:
        jobs = self.jobs
        hub = self.hub
        tenants = self.tenants

        class _Live:
            def collect(self) -> Any:
                states = GaugeMetricFamily("diquis_jobs", "Jobs by state", labels=["state"])
                for state, count in jobs.monitoring.state_counts().items():
                    states.add_metric([state.value], count)
                yield states
                yield GaugeMetricFamily(
                    "diquis_hub_connections", "Open hub connections in this process",
                    value=len(hub.connections),
                )  # fmt: skip
                repaired = CounterMetricFamily(
                    "diquis_tenant_repairs", "Tenants repaired by the reconciler, all processes",
                    labels=["kind"],
                )  # fmt: skip
                for kind, count in sorted(tenants.repairs().items()):
                    repaired.add_metric([kind], count)
                yield repaired

        self.metrics.register(_Live())


class SpaFiles(StaticFiles):
    """Static files of the web app; unknown page paths get index.html (client-side routes)."""

    NOT_PAGES = ("api", "hubs", "hangfire")

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except StarletteHTTPException as exc:
            first = Path(path).parts[0] if Path(path).parts else ""
            if exc.status_code != 404 or "." in Path(path).name or first in self.NOT_PAGES:
                raise
            return await super().get_response("index.html", scope)


def build_app() -> Diquis:
    """The application from ``DIQUIS_*`` settings (``diquis worker``'s default ``--app``)."""
    return Diquis()


def create_asgi() -> FastAPI:
    """The ASGI app with the job server in-process: the factory for other ASGI servers.

    For deployments that do not use ``diquis serve``: ``uvicorn --factory
    diquis.app:create_asgi``, or gunicorn with uvicorn workers, or any ASGI host that
    takes an application factory.
    """
    return build_app().asgi()
