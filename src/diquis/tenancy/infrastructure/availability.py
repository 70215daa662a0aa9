"""A database that is down or saturated is the server's state, not a bug: answer 503.

While the catalog (or the job storage) cannot be reached, every API request that needs it
gets ``503 {"detail": "database unavailable"}`` with ``Retry-After: 5``; when every
catalog connection stays busy for the whole wait it gets ``503 {"detail": "database
busy"}``. Never a 500, never a hang. Connections recover by themselves (pre-ping on the
catalog's pool, reconnects in the job storage), so the next request after the database is
back succeeds.
"""

from __future__ import annotations

import logging
import sqlite3

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from .db import DatabaseBusyError

log = logging.getLogger(__name__)

RETRY_AFTER = "5"

#: errors that mean "the database cannot be reached right now" (not "your input is bad")
UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # the pool's own wait for a connection ran out
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
    sqlite3.OperationalError,
)


def _answer(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": RETRY_AFTER})


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning(
        "database unavailable for %s %s: %s", request.method, request.url.path,
        type(exc).__name__,
    )  # fmt: skip
    return _answer("database unavailable")


async def _busy(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database busy for %s %s", request.method, request.url.path)
    return _answer("database busy")


def install_unavailable_handlers(app: FastAPI) -> None:
    """Map database outages and pool exhaustion to 503 with Retry-After on ``app``."""
    app.add_exception_handler(DatabaseBusyError, _busy)
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, _unavailable)
