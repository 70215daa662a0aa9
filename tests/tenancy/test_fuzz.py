"""Every API operation fuzzed from the OpenAPI schema (schemathesis) on a real server.

No 5xx, and every answer (status, content type, body) as the schema declares it. The app
runs without a job server, so fuzzed tenants stay Pending and no database is created.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from diquis.app import Diquis
from diquis.identity import ROLE_SUPERADMIN, Principal, issue_token
from diquis.settings import Settings
from tests.support.threaded import ThreadedServer

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SECRET

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_MODE = 25  # positive + negative: at most 50 per operation
BUDGET_SECONDS = 120


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[Diquis, str]]:
    app = Diquis(
        Settings.from_env(
            {
                "DIQUIS_DATA_DIR": str(tmp_path / "data"),
                "DIQUIS_DATABASE_URL": database_url,
                "DIQUIS_SECRET_KEY": SECRET,
                "DIQUIS_PUBLIC_URL": "http://diquis.test",
                "DIQUIS_DEV": "1",
            }
        )
    )
    app.migrate()
    app.users.ensure_superadmin(ADMIN_EMAIL, ADMIN_PASSWORD)
    with ThreadedServer(app.asgi(run_worker=False)) as running:
        yield app, running.base
    app.close()


def test_every_api_operation_survives_fuzzing(server: tuple[Diquis, str]) -> None:
    app, base = server
    raw = httpx.get(f"{base}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    principal = Principal("fuzz-admin", ROLE_SUPERADMIN, None, ADMIN_EMAIL)
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    calls: dict[str, int] = {}
    assert len(operations) >= 10

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case: schemathesis.Case) -> None:
                # a fresh token each time: a fuzzed logout revokes only its own
                token = issue_token(SECRET, principal, ttl=600)
                response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"})
                calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
                case.validate_response(response, checks=CHECKS)

            try:
                exercise()
            except Exception as exc:
                if "Failed to generate" in str(exc) or "Unsatisfiable" in type(exc).__name__:
                    continue  # e.g. no invalid input exists for an operation without inputs
                raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
    assert set(calls) == {op.label for op in operations}, calls
    assert time.monotonic() - started < BUDGET_SECONDS
    # nothing was provisioned: no job server ran, so no tenant database exists
    assert not list((app.settings.data_dir / "tenants").glob("*.db"))
