"""The README's nginx snippet, tested: Debian's nginx in front of two ``diquis serve``.

The nginx block of the README's Deploy section is rendered with the ports of this test
(its two upstream addresses and ``listen 80``, nothing else) and run by ``/usr/sbin/nginx``
as a child process (own prefix, config, pid file and logs in the test's tmp dir), in front
of two ``diquis serve --no-worker`` processes and one ``diquis worker`` on one PostgreSQL
catalog with the PostgreSQL backplane. Through nginx, with the official ``@microsoft/signalr``
client (Node):

- a super admin logs in (``POST /api/auth/login``), opens one hub connection per transport
  (WebSockets, Server-Sent Events, long polling: negotiate + connect, the JWT as
  ``access_token``), creates a tenant; the worker's ``TenantStatusChanged`` (Active) and
  ``ReceiveNotification`` ("Tenant ... is ready.") reach every connection;
- the WebSocket goes through as an upgrade (101 in nginx's access log);
- every request of one connection (``?id=``) went to one upstream (access log), and
  connections start every time (several per transport);
- stickiness matters: the same snippet without its ``hash`` line (round robin) makes the
  negotiate and the connect of one connection land on different processes, and every
  connection fails with 404 ("No Connection with that ID");
- without the ``Upgrade`` / ``Connection`` headers, WebSockets fail.

What loopback cannot show: every client here has the address 127.0.0.1, so
``hash $remote_addr`` sends all hub traffic to one process; that different client
addresses spread over the processes is nginx's ``hash`` itself, not tested here.
``examples/nginx.conf`` must be the README's block with compose's host names.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import need
from tests.realtime.conftest import NodeScenario
from tests.realtime.conftest import node as node  # the official client's scenarios
from tests.support import processes
from tests.support.net import free_port, wait_for_port
from tests.tenancy.proc_stack import ROOT_EMAIL, ROOT_PASSWORD, Stack, smtp_server, unique

REPO = Path(__file__).resolve().parent.parent.parent
README = REPO / "README.md"
EXAMPLE = REPO / "examples" / "nginx.conf"
NGINX = "/usr/sbin/nginx"
TRANSPORTS = ["WebSockets", "ServerSentEvents", "LongPolling"]
STICKY = "hash $remote_addr consistent; "
UPGRADE_LINES = (
    "        proxy_set_header Upgrade $http_upgrade;\n",
    "        proxy_set_header Connection $connection_upgrade;\n",
)
# The README's upstream addresses, and compose's (examples/nginx.conf) for the same ones.
README_HOSTS = ("127.0.0.1:8001", "127.0.0.1:8002")
EXAMPLE_HOSTS = ("web1:8000", "web2:8000")

Node = Callable[[str, dict[str, Any]], NodeScenario]


def readme_snippet() -> str:
    """The one ```nginx block of the README's Deploy section."""
    text = README.read_text()
    deploy = text.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```nginx\n(.*?)```", deploy, re.S)
    assert len(blocks) == 1, "the Deploy section should have exactly one nginx block"
    return str(blocks[0])


def render(snippet: str, upstreams: tuple[int, int], port: int) -> str:
    """The snippet with this test's upstream ports and listening address."""
    ports = dict(zip(README_HOSTS, upstreams, strict=True))
    site, count = re.subn(
        "|".join(map(re.escape, README_HOSTS)), lambda m: f"127.0.0.1:{ports[m[0]]}", snippet
    )
    assert count == 4, "both upstream blocks should list both processes"
    site, count = re.subn(r"\blisten 80;", f"listen 127.0.0.1:{port};", site)
    assert count == 1
    return site


def without(site: str, *parts: str) -> str:
    """The site with each part (which must be there) removed."""
    for part in parts:
        assert part in site, part
        site = site.replace(part, "")
    return site


class Nginx:
    """Debian's nginx with a config of its own under ``folder``; stopped by its PID."""

    def __init__(self, folder: Path, site: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.port = int(re.findall(r"listen 127\.0\.0\.1:(\d+);", site)[0])
        (folder / "diquis.conf").write_text(site)
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, nginx's workers would switch to nobody, who cannot enter pytest's tmp.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} info;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    log_format hub '$upstream_addr $request_method $uri $arg_id $status "
            "$http_upgrade';\n"
            f"    access_log {folder / 'access.log'} hub;\n"
            f"{temp}\n"
            f"    include {folder / 'diquis.conf'};\n"
            "}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = processes.spawn(
            [NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
             "-e", str(self.folder / "error.log"), "-g", "daemon off;"],
            log=self.folder / "stderr.log",
        )  # fmt: skip
        try:
            wait_for_port(self.port, timeout=10)
        except TimeoutError:
            raise AssertionError(f"nginx did not start:\n{self.errors()}") from None

    def stop(self) -> None:
        # SIGTERM is nginx's fast shutdown; the master ends its worker
        processes.stop(self.process, timeout=5, kill_timeout=5)

    def errors(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:]
            for p in (self.folder / "stderr.log", self.folder / "error.log")
            if p.exists()
        )

    def access(self) -> list[list[str]]:
        """(upstream, method, path, id, status, upgrade) of every request so far."""
        return [line.split(" ") for line in (self.folder / "access.log").read_text().splitlines()]


@pytest.fixture
def nginx_bin() -> str:
    need(os.access(NGINX, os.X_OK), f"{NGINX} is missing (apt-get install nginx)")
    return NGINX


def test_the_example_is_the_readme_snippet_with_compose_hosts() -> None:
    example = "".join(
        line for line in EXAMPLE.read_text().splitlines(keepends=True) if not line.startswith("#")
    )
    expected = readme_snippet()
    for readme_host, compose_host in zip(README_HOSTS, EXAMPLE_HOSTS, strict=True):
        expected = expected.replace(readme_host, compose_host)
    assert example == expected


def _starts(node: Node, url: str, token: str, transport: str, count: int) -> list[dict[str, str]]:
    """How each of ``count`` connections' start went (the official client's ``many``)."""
    run = node("many", {"url": url, "token": token, "transport": transport, "count": count})
    results: list[dict[str, str]] = run.read()["results"]
    assert run.finish() == 0
    return results


def _drop_tenant_databases(stack: Stack) -> None:
    import psycopg
    from psycopg import sql
    from sqlalchemy import select

    from diquis.tenancy.infrastructure.db import tenants

    with stack.catalog.connect() as conn:
        slugs = [r[0] for r in conn.execute(select(tenants.c.slug))]
    stack.catalog.dispose()
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        for slug in slugs:
            name = "diquis_tenant_" + slug.replace("-", "_")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_readme_nginx_in_front_of_two_serve_processes_all_transports(
    nginx_bin: str, node: Node, postgres_url: str, tmp_path: Path
) -> None:
    snippet = readme_snippet()
    backplane = f"{postgres_url}?channel=t{uuid.uuid4().hex[:10]}"
    proxies: list[Nginx] = []
    with smtp_server() as (_, smtp_port):
        stack = Stack(
            tmp_path, postgres_url, backplane, smtp_port,
            env={"DIQUIS_TRUSTED_PROXIES": "127.0.0.1"},
        )  # fmt: skip
        try:
            stack.cli("create-superadmin", "--email", ROOT_EMAIL, "--password", ROOT_PASSWORD)
            web1, web2 = stack.serve("web1"), stack.serve("web2")
            worker = stack.worker("worker", DIQUIS_DEMO_STEP_DELAY="0.1")
            stack.ready(web1, web2, worker)
            assert web1.port is not None and web2.port is not None
            upstreams = (web1.port, web2.port)
            sticky = Nginx(tmp_path / "nginx", render(snippet, upstreams, free_port()))
            round_robin = Nginx(
                tmp_path / "nginx-rr", without(render(snippet, upstreams, free_port()), STICKY)
            )
            no_upgrade = Nginx(
                tmp_path / "nginx-noupgrade",
                without(render(snippet, upstreams, free_port()), *UPGRADE_LINES),
            )
            proxies += [sticky, round_robin, no_upgrade]
            for proxy in proxies:
                proxy.start()
            _through_nginx(node, stack, sticky, round_robin, no_upgrade, upstreams)
        except BaseException:
            print(stack.logs())
            for proxy in proxies:
                print(f"=== nginx {proxy.folder.name}\n{proxy.errors()}")
            raise
        finally:
            for proxy in proxies:
                with contextlib.suppress(Exception):
                    proxy.stop()
            stack.stop()
            with contextlib.suppress(Exception):  # never hide the test's own failure
                _drop_tenant_databases(stack)


def _through_nginx(
    node: Node,
    stack: Stack,
    sticky: Nginx,
    round_robin: Nginx,
    no_upgrade: Nginx,
    upstreams: tuple[int, int],
) -> None:
    hub = "/hubs/notifications"
    login = httpx.post(
        f"{sticky.base}/api/auth/login",
        json={"email": ROOT_EMAIL, "password": ROOT_PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    token: str = login.json()["access_token"]

    # 1. One connection per transport; the worker's pushes reach each of them.
    name = unique("Proxied")
    ready = ["Success", f"Tenant {name} is ready."]
    run = node(
        "deploy",
        {"url": sticky.base + hub, "token": token, "transports": TRANSPORTS, "expect": ready},
    )
    opened = run.read()
    assert opened["transports"] == [
        "WebSocketTransport",
        "ServerSentEventsTransport",
        "LongPollingTransport",
    ]
    created = httpx.post(
        f"{sticky.base}/api/tenants",
        json={"name": name, "admin_email": f"admin-{uuid.uuid4().hex[:6]}@proxied.test"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert created.status_code == 202, created.text
    out = run.read(timeout=30)
    assert run.finish() == 0
    for transport, notes, statuses in zip(
        TRANSPORTS, out["notifications"], out["statuses"], strict=True
    ):
        assert ready in notes, (transport, notes)
        assert [name, "Active"] in statuses, (transport, statuses)

    # 2. Several connections per transport start, each one's requests on one process.
    for transport in TRANSPORTS:
        results = _starts(node, sticky.base + hub, token, transport, 4)
        assert results == [{"ok": "ok"}] * 4, (transport, results)
    log = sticky.access()
    by_id: dict[str, set[str]] = defaultdict(set)
    for upstream, _method, path, conn_id, _status, _upgrade in log:
        if path.startswith(hub) and conn_id != "-":
            by_id[conn_id].add(upstream)
    assert len(by_id) == 3 + 3 * 4, by_id
    assert all(len(where) == 1 for where in by_id.values()), by_id
    upgrades = [r for r in log if r[2] == hub and r[4] == "101" and r[5] == "websocket"]
    assert len(upgrades) == 1 + 4, log
    # The API is balanced over both processes (round robin); the hub, keyed on the client
    # address, is on one of them: on loopback every client is 127.0.0.1.
    api_upstreams = {r[0] for r in log if r[2].startswith("/api/")}
    assert api_upstreams == {f"127.0.0.1:{port}" for port in upstreams}, log
    assert len({r[0] for r in log if r[2].startswith(hub)}) == 1

    # 3. Without the hash line, negotiate and connect alternate between the processes.
    for transport in TRANSPORTS:
        results = _starts(node, round_robin.base + hub, token, transport, 4)
        assert all("error" in r for r in results), (transport, results)
    # Each negotiate (which creates the connection) was followed by its connect on the
    # other process, which does not know the connection: 404, 12 times out of 12.
    log = round_robin.access()
    assert len(log) == 2 * 3 * 4, log
    for negotiate, connect in zip(log[::2], log[1::2], strict=True):
        assert negotiate[2:5] == [f"{hub}/negotiate", "-", "200"], log
        assert connect[2] == hub and connect[3] != "-" and connect[4] == "404", log
        assert connect[0] != negotiate[0], log

    # 4. Without the Upgrade / Connection headers there is no WebSocket.
    (result,) = _starts(node, no_upgrade.base + hub, token, "WebSockets", 1)
    assert "error" in result, result
    assert not any(r[4] == "101" for r in no_upgrade.access())
