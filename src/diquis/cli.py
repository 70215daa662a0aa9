"""The ``diquis`` command: serve, worker, migrate, create-superadmin."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


def load_app(spec: str) -> Any:
    """The object named by ``module:attr`` (called first if it is a factory function)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"--app must look like 'package.module:attribute', got {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"--app {spec!r}: cannot import {module_name!r}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"--app {spec!r}: {module_name!r} has no attribute {attr!r}") from None
    return obj


def _engine_of(obj: Any) -> Any:
    from .jobs import JobEngine

    if isinstance(obj, JobEngine):
        return obj
    if isinstance(getattr(obj, "jobs", None), JobEngine):
        return obj.jobs
    if callable(obj):
        return _engine_of(obj())
    raise SystemExit(f"--app must name a JobEngine (or an object with .jobs), got {obj!r}")


#: what the reference app imports (the [app] extra); the job engine needs none of it
APP_MODULES = (
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "aiosmtplib",
    "pwdlib",
    "prometheus_client",
    "starlette",
    "jwt",
    "psycopg",
    "redis",
)
APP_HINT = "this command needs: pip install 'diquis[app]'"
DEFAULT_APP = "diquis.app:build_app"


def require_app_extra(command: str) -> None:
    """Exit 2 with the install hint when the [app] extra's packages are missing."""
    import importlib.util

    missing = [m for m in APP_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        print(f"diquis {command}: {APP_HINT} (missing: {', '.join(missing)})", file=sys.stderr)
        raise SystemExit(2)


def _worker(args: argparse.Namespace) -> int:
    if args.app == DEFAULT_APP:
        require_app_extra("worker (with the default --app)")
    engine = _engine_of(load_app(args.app))
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    server = engine.server(
        queues=queues,
        concurrency=args.concurrency,
        prefetch=args.prefetch,
        name=args.name,
        shutdown_timeout=args.shutdown_timeout,
        heartbeat_interval=args.heartbeat_interval,
        server_timeout=args.server_timeout,
    )
    server.run()
    engine.close()
    if any(t.name.startswith("diquis-job") for t in threading.enumerate()):
        # a sync job ignored its cancellation token; its result is discarded anyway
        log.warning("exiting with a sync job still running")
        sys.stdout.flush()
        os._exit(0)
    return 0


def _count(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least``, or a clear usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is less than {least}")
        return value

    return parse


_PREFETCH_HELP = (
    "jobs claimed ahead of free slots, at least (default: the concurrency; up to 250 while"
    " jobs end faster than a round trip to the store; 0: claim only for free slots)"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``diquis`` command."""
    parser = argparse.ArgumentParser(prog="diquis", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("DIQUIS_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run a job server until SIGTERM")
    worker.add_argument(
        "--app",
        default=DEFAULT_APP,
        help="module:attr naming a JobEngine or an object with .jobs (default: the Diquis app)",
    )
    worker.add_argument("--queues", default="default", help="comma-separated, by priority")
    worker.add_argument("--concurrency", type=_count(1), default=10)
    worker.add_argument("--prefetch", type=_count(0), default=None, help=_PREFETCH_HELP)
    worker.add_argument("--name", default=None, help="server id (default host:pid:random)")
    worker.add_argument("--shutdown-timeout", type=float, default=15.0)
    worker.add_argument("--heartbeat-interval", type=float, default=2.0)
    worker.add_argument("--server-timeout", type=float, default=15.0)
    worker.set_defaults(handler=_worker)

    serve = commands.add_parser("serve", help="run the web app (API, hub, dashboard, UI)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-worker", action="store_true", help="run no job server in-process")
    serve.add_argument("--concurrency", type=_count(1), default=10)
    serve.add_argument("--prefetch", type=_count(0), default=None, help=_PREFETCH_HELP)
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="upgrade the catalog and every tenant database")
    migrate.set_defaults(handler=_migrate)

    admin = commands.add_parser("create-superadmin", help="create (or reset) a super admin")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="default: a generated one, printed once")
    admin.set_defaults(handler=_create_superadmin)
    return parser


def _settings_or_exit() -> Any:
    from .settings import Settings, SettingsError

    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


def _serve(args: argparse.Namespace) -> int:
    from .app import Diquis
    from .hardening import uvicorn_log_config
    from .webserver import serve, uvicorn_config

    settings = _settings_or_exit()
    app = Diquis(settings)
    app.migrate()
    options = {"concurrency": args.concurrency, "prefetch": args.prefetch}
    asgi = app.asgi(run_worker=not args.no_worker, worker_options=options)
    config = uvicorn_config(asgi, host=args.host, port=args.port, ws_deflate=settings.ws_deflate,
                            log_level=args.log_level.lower(), timeout_graceful_shutdown=15,
                            log_config=uvicorn_log_config(),
                            **proxy_options(settings.trusted_proxies))  # fmt: skip
    print(f"Diquis is serving on http://{args.host}:{args.port}", flush=True)
    serve(config)
    app.close()
    return 0


def proxy_options(trusted: Sequence[str]) -> dict[str, Any]:
    """uvicorn's proxy settings: believe X-Forwarded-* only from ``trusted`` proxies.

    With none (the default) the client is the socket's peer: uvicorn's own default would
    trust any process on 127.0.0.1, so anyone there could pick their address per request.
    """
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(trusted)}


def _migrate(args: argparse.Namespace) -> int:
    from .app import Diquis

    app = Diquis(_settings_or_exit())
    done = app.migrate(tenants=True)
    print(f"catalog and job tables up to date; {len(done)} tenant database(s) migrated")
    app.close()
    return 0


def _create_superadmin(args: argparse.Namespace) -> int:
    import secrets

    from .app import Diquis
    from .identity import PasswordPolicyError
    from .tenancy.domain import ValidationError, validate_email

    app = Diquis(_settings_or_exit())
    app.migrate()
    password = args.password or secrets.token_urlsafe(12)
    try:
        email = validate_email(args.email, "--email")
        _, created = app.users.ensure_superadmin(email, password)
    except (ValidationError, PasswordPolicyError) as exc:
        raise SystemExit(f"create-superadmin: {exc}") from None
    finally:
        app.close()
    print(f"super admin {email} {'created' if created else 'updated'}")
    if not args.password:
        print(f"password: {password}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``diquis`` console command."""
    from .hardening import install_log_redaction

    args = build_parser().parse_args(argv)
    os.umask(0o077)  # databases, mailbox and secrets this process writes: its owner's only
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command in ("serve", "migrate", "create-superadmin"):
        require_app_extra(args.command)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
