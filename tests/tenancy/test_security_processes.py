"""Security of a real ``diquis serve`` process: who the client is, and what its log says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from diquis.cli import proxy_options
from diquis.hardening import redact

from .proc_stack import ROOT_EMAIL, ROOT_PASSWORD, Stack, smtp_server


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with smtp_server() as (_, port):
        made = Stack(tmp_path, f"sqlite:///{tmp_path}/catalog.db", "memory://", port)
        made.cli("create-superadmin", "--email", ROOT_EMAIL, "--password", ROOT_PASSWORD)
        try:
            yield made
        finally:
            made.stop()


def _signups(base: str, count: int, forwarded: bool) -> list[int]:
    codes = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(count):
            headers = {"X-Forwarded-For": f"203.0.113.{i + 1}"} if forwarded else {}
            reply = client.post(
                "/api/signup",
                json={"organization": f"Spoof {i}", "email": f"s{i}@spoof.test"},
                headers=headers,
            )
            codes.append(reply.status_code)
    return codes


def test_made_up_forwarded_for_headers_do_not_reset_the_signup_limit(stack: Stack) -> None:
    web = stack.serve("web")
    stack.ready(web)
    assert _signups(web.base, 7, forwarded=True) == [202] * 5 + [429, 429]


def test_trusted_proxies_are_believed(stack: Stack) -> None:
    web = stack.serve("web", DIQUIS_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    stack.ready(web)
    assert _signups(web.base, 7, forwarded=True) == [202] * 7
    assert proxy_options(()) == {"proxy_headers": False, "forwarded_allow_ips": ""}


def test_tokens_never_reach_the_servers_log(stack: Stack) -> None:
    web = stack.serve("web")
    stack.ready(web)
    with httpx.Client(base_url=web.base, timeout=10) as client:
        login = client.post(
            "/api/auth/login", json={"email": ROOT_EMAIL, "password": ROOT_PASSWORD}
        )
        jwt = login.json()["access_token"]
        welcome = client.get("/set-password?token=welcome-link-secret-123")
        assert welcome.headers["referrer-policy"] == "no-referrer"
        client.post(f"/hubs/notifications/negotiate?negotiateVersion=1&access_token={jwt}")
        client.get(f"/hubs/notifications?id=nope&access_token={jwt}")
        client.get("/api/me", headers={"Authorization": f"Bearer {jwt}"})
        client.get(f"/api/nothing?note={jwt}")
    stack.stop()
    log = web.output()
    assert "/hubs/notifications/negotiate?negotiateVersion=1&access_token=[redacted]" in log
    assert "GET /set-password?token=[redacted]" in log
    assert "welcome-link-secret-123" not in log
    assert jwt not in log and jwt.split(".")[1] not in log


def test_redact_leaves_ordinary_text_alone() -> None:
    assert redact("GET /api/tenants?offset=10 HTTP/1.1") == "GET /api/tenants?offset=10 HTTP/1.1"
    assert redact("token_count=3 tokens") == "token_count=3 tokens"
    assert redact("?id_token=abc&x=1") == "?id_token=[redacted]&x=1"
    assert redact("Bearer eyJhbGciOi.eyJzdWIiOjF9.c2ln") == "Bearer [redacted]"


def test_redact_hides_a_url_password_and_keeps_the_rest() -> None:
    assert (
        redact("connect postgresql://app:s3cr%2Ft@db:5432/diquis failed")
        == "connect postgresql://app:[redacted]@db:5432/diquis failed"
    )
    assert redact("redis://:hunter2@cache:6379/0") == "redis://:[redacted]@cache:6379/0"
    assert redact("postgresql://app@db/diquis and http://db:5432/x") == (
        "postgresql://app@db/diquis and http://db:5432/x"
    )
