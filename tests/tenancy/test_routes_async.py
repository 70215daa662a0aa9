"""Every API endpoint and dependency is a coroutine: FastAPI runs a plain ``def`` in a worker
thread, one thread hop per request (and per dependency) that the event loop does not need."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from diquis.tenancy.api.routes import build_router


def _calls(dependant: Dependant) -> list[Any]:
    found = [dependant.call]
    for sub in dependant.dependencies:
        found += _calls(sub)
    return found


def _is_coroutine(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 - a dependency may be an instance
    )


def test_no_endpoint_or_dependency_of_the_api_runs_in_a_thread() -> None:
    services: Any = SimpleNamespace(mailbox=SimpleNamespace(), dev_mode=True)
    routes = [r for r in build_router(services).routes if isinstance(r, APIRoute)]
    assert len(routes) > 10
    sync = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in routes
        for call in _calls(route.dependant)
        if call is not None and not _is_coroutine(call)
    }
    assert not sync, sorted(sync)
