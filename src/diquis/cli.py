"""The ``diquis`` command: ``diquis worker --app module:attr [--queues a,b] [--concurrency N]``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any


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


def _worker(args: argparse.Namespace) -> int:
    engine = _engine_of(load_app(args.app))
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    server = engine.server(
        queues=queues,
        concurrency=args.concurrency,
        name=args.name,
        shutdown_timeout=args.shutdown_timeout,
        heartbeat_interval=args.heartbeat_interval,
        server_timeout=args.server_timeout,
    )
    server.run()
    engine.close()
    if any(t.name.startswith("diquis-job") for t in threading.enumerate()):
        # a sync job ignored its cancellation token; its result is discarded anyway
        logging.getLogger("diquis.jobs").warning("exiting with a sync job still running")
        sys.stdout.flush()
        os._exit(0)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``diquis`` command."""
    parser = argparse.ArgumentParser(prog="diquis", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("DIQUIS_LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run a job server until SIGTERM")
    worker.add_argument("--app", required=True, help="module:attr naming the JobEngine")
    worker.add_argument("--queues", default="default", help="comma-separated, by priority")
    worker.add_argument("--concurrency", type=int, default=10)
    worker.add_argument("--name", default=None, help="server id (default host:pid:random)")
    worker.add_argument("--shutdown-timeout", type=float, default=15.0)
    worker.add_argument("--heartbeat-interval", type=float, default=2.0)
    worker.add_argument("--server-timeout", type=float, default=15.0)
    worker.set_defaults(handler=_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``diquis`` console command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
