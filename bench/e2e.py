"""End-to-end benchmark: the shipped processes on PostgreSQL, driven through the API and hub.

What runs: a private PostgreSQL catalog database (made here, dropped at the end, with its
tenant databases: a unique ``DIQUIS_TENANT_DB_PREFIX``), ``diquis migrate``, ``diquis
create-superadmin``, then ``diquis serve --no-worker`` and one ``diquis worker`` as
separate processes (the PostgreSQL LISTEN/NOTIFY backplane carries the worker's hub
messages to the web process). Everything is stopped by its PID.

1. **toast** — ``--admins`` super admins (one logs in through the API; the others are
   inserted as users with tokens signed by the app's key) each hold one connection of the
   official ``@microsoft/signalr`` client (``bench/hub_node/toast.mjs``, WebSockets,
   ``accessTokenFactory``). Then ``--toasts`` tenants are created one at a time, each
   waited for until Active. For each tenant and each connection: receive time of
   ``TenantStatusChanged`` (status Active) minus the tenant row's ``updated_at`` for that
   move (stamped by the worker just before it writes the row, so it includes the write).
   The initiator's own toast (``ReceiveNotification`` "Tenant X is ready.") is reported
   too: it comes after the notification row is stored. All clocks are this machine's wall
   clock (``time.time()`` / ``performance.timeOrigin + performance.now()``).
2. **load** — ``POST /api/tenants`` with unique names and e-mails from N concurrent
   clients for N in ``--clients``: a *closed-loop* generator (each client sends its next
   request when its last one is answered; one keep-alive connection per client; asyncio
   + aiohttp on uvloop, in this process), ``--requests`` requests per N after a warm-up;
   latency is client-side ``perf_counter`` from send to full response. In a closed loop
   latency = N / throughput, so the p99 at N clients is bounded below by N / (req/s).
   With ``--rates``, open-loop steps follow over ``--open-clients`` connections: request i
   is due at i / rate seconds and timed from then (waiting for a free connection counts).
   The worker provisions (``CREATE DATABASE``...) the tenants meanwhile; the backlog of
   tenants not yet Active is shown after each step.

Run ``make bench-e2e`` or ``.venv-bench/bin/python bench/e2e.py`` (``--help``). Needs
PostgreSQL on 127.0.0.1 (``--pg-url`` is an admin connection) and ``node``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg import sql

from diquis.identity import Principal, issue_token

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _procs import NodeProcess, cpu_seconds, end, free_port, raise_nofile  # noqa: E402
from _stats import percentile  # noqa: E402

ADMIN_EMAIL = "root@e2e.bench"
ADMIN_PASSWORD = "e2e-bench-password-2026"
LOAD_TARGET_P99_MS = 50.0
LOAD_TARGET_CLIENTS = 50
TOAST_TARGET_P99_MS = 100.0


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the stack -----------------------------------------------------------------------------


class Stack:
    """A private catalog database and the ``diquis`` processes on it."""

    def __init__(
        self, admin_url: str, work: Path, log_level: str, concurrency: int, workers: int = 1
    ) -> None:
        self.admin_url = admin_url
        self.work = work
        tag = uuid.uuid4().hex[:8]
        self.tag = tag
        self.db_name = f"diquis_e2e_{tag}"
        self.prefix = f"dqe_{tag}_"
        base = admin_url.rsplit("/", 1)[0]
        self.url = f"{base}/{self.db_name}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.secret = secrets.token_urlsafe(48)
        self.log_level = log_level
        self.concurrency = concurrency
        self.workers = workers
        self.env = {
            **os.environ,
            "DIQUIS_DATA_DIR": str(work / "data"),
            "DIQUIS_DATABASE_URL": self.url,
            "DIQUIS_BACKPLANE_URL": self.url,
            "DIQUIS_SECRET_KEY": self.secret,
            "DIQUIS_TENANT_DB_PREFIX": self.prefix,
            "DIQUIS_PUBLIC_URL": self.base,
            "DIQUIS_WEB_DIR": str(work / "no-web"),
            "DIQUIS_LOG_LEVEL": log_level,
        }
        self.procs: dict[str, subprocess.Popen[Any]] = {}

    def diquis(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "diquis.cli", *args]

    def setup(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
        for args in (
            ("migrate",),
            ("create-superadmin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD),
        ):
            subprocess.run(self.diquis(*args), env=self.env, check=True, capture_output=True)

    def start(self) -> None:
        commands = {"serve": self.diquis("serve", "--no-worker", "--port", str(self.port))}
        for i in range(self.workers):
            name = "worker" if i == 0 else f"worker{i + 1}"
            commands[name] = self.diquis("worker", "--concurrency", str(self.concurrency))
        for name, command in commands.items():
            out = (self.work / f"{name}.log").open("w")
            self.procs[name] = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=raise_nofile,
            )  # fmt: skip
            log(f"started {name} (pid {self.procs[name].pid})")
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited; see {self.work / (name + '.log')}")
            if time.monotonic() > deadline:
                raise TimeoutError("diquis serve did not become ready in 60 s")
            time.sleep(0.1)

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(proc.pid) for name, proc in self.procs.items()}

    def stop(self) -> None:
        for name, proc in self.procs.items():
            end(proc)
            log(f"stopped {name} (pid {proc.pid})")

    def drop(self) -> None:
        """Drop every tenant database with this run's prefix, then the catalog."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                    (self.prefix,),
                )
            ]
            for name in [*names, self.db_name]:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        log(f"dropped {len(names)} tenant database(s) and {self.db_name}")

    def catalog(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def login(self) -> tuple[str, str]:
        """The super admin's access token and user id, through the API."""
        body = json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode()
        request = urllib.request.Request(
            f"{self.base}/api/auth/login", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            token: str = json.loads(reply.read())["access_token"]
        with self.catalog() as conn:
            row = conn.execute("SELECT id FROM users WHERE email = %s", (ADMIN_EMAIL,)).fetchone()
        assert row is not None
        return token, str(row[0])

    def extra_admins(self, count: int) -> list[str]:
        """``count`` more super admins, inserted directly, and a token for each."""
        rows = [(str(uuid.uuid4()), f"admin{i}.{self.tag}@e2e.bench") for i in range(count)]
        with self.catalog() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO users (id, email, password_hash, role, tenant_id, created_at)"
                " VALUES (%s, %s, NULL, 'SuperAdmin', NULL, now())",
                rows,
            )
        return [
            issue_token(self.secret, Principal(user_id, "SuperAdmin", None, email), ttl=3600)
            for user_id, email in rows
        ]

    def backlog(self) -> int:
        """Tenants not Active yet (the worker's provisioning backlog)."""
        with self.catalog() as conn:
            row = conn.execute("SELECT count(*) FROM tenants WHERE status <> 'Active'").fetchone()
        return int(row[0]) if row else 0


# -- load: POST /api/tenants from N closed-loop clients -------------------------------------


@dataclass
class LoadStep:
    clients: int
    rate: float  # open loop: requests/s asked for; 0: closed loop
    requests: int
    seconds: float
    rps: float
    p50: float
    p90: float
    p99: float
    max: float
    errors: int
    first_error: str | None
    cpu_serve: float
    cpu_worker: float
    backlog: int


async def _load(
    base: str, token: str, tag: str, start: int, n: int, clients: int, rate: float = 0.0
) -> Any:
    """``n`` POSTs over ``clients`` keep-alive connections: closed loop (``rate`` 0: each
    client sends its next request when its last is answered) or open loop (request i is due
    at ``i / rate`` s and timed from then, so time spent waiting for a free connection
    counts: no coordinated omission)."""
    latencies: list[float] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        base_url=base, connector=connector, timeout=timeout, headers=headers
    ) as session:

        async def post(i: int, due: float) -> None:
            body = {"name": f"E2E {tag} {i}", "admin_email": f"owner{i}@{tag}.e2e.bench"}
            async with session.post("/api/tenants", json=body) as reply:
                answer = await reply.read()
                status = reply.status
            latencies.append(time.perf_counter() - due)
            if status != 202:
                errors.append(f"{status}: {answer[:200]!r}")

        counter = iter(range(start, start + n))

        async def client() -> None:
            for i in counter:
                await post(i, time.perf_counter())

        began = time.perf_counter()
        if rate <= 0:
            await asyncio.gather(*(client() for _ in range(clients)))
        else:
            sent: list[asyncio.Task[None]] = []
            for k, i in enumerate(range(start, start + n)):
                due = began + k / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                sent.append(asyncio.create_task(post(i, due)))
            await asyncio.gather(*sent)
        seconds = time.perf_counter() - began
    return latencies, errors, seconds


def run_load(
    stack: Stack,
    token: str,
    plan: list[tuple[int, float]],
    requests: int,
    warmup: int,
) -> list[LoadStep]:
    """One step per (clients, rate) of ``plan``; rate 0 is the closed loop."""
    import uvloop

    steps: list[LoadStep] = []
    index = 0
    if warmup:
        uvloop.run(_load(stack.base, token, stack.tag, index, warmup, 10))
        index += warmup
    for clients, rate in plan:
        cpu_before = stack.cpu()
        latencies, errors, seconds = uvloop.run(
            _load(stack.base, token, stack.tag, index, requests, clients, rate)
        )
        cpu_after = stack.cpu()
        cpu_serve = cpu_after["serve"] - cpu_before["serve"]
        index += requests
        ms = [x * 1000 for x in latencies]
        step = LoadStep(
            clients=clients, rate=rate, requests=len(ms), seconds=seconds,
            rps=len(ms) / seconds, p50=percentile(ms, 50), p90=percentile(ms, 90),
            p99=percentile(ms, 99), max=max(ms), errors=len(errors),
            first_error=errors[0] if errors else None, cpu_serve=cpu_serve,
            cpu_worker=sum(cpu_after.values()) - sum(cpu_before.values()) - cpu_serve,
            backlog=stack.backlog(),
        )  # fmt: skip
        log(
            f"load {clients:>3} clients {'closed loop' if not rate else f'at {rate:g}/s'}: "
            f"{step.rps:7.1f} req/s p50 {step.p50:6.1f} ms p99 {step.p99:6.1f} ms "
            f"max {step.max:6.1f} ms errors {step.errors} backlog {step.backlog}"
        )
        steps.append(step)
    return steps


# -- toast: Active -> every connected super admin -------------------------------------------


@dataclass
class ToastResult:
    admins: int
    connected: int
    connect_seconds: float
    tenants: int
    deliveries: int
    expected: int
    p50: float
    p90: float
    p99: float
    max: float
    toast_p50: float
    toast_max: float
    toasts: int
    #: per tenant: the first connection's delay and the last one's (the fan-out's spread)
    first_p50: float = float("nan")
    last_p50: float = float("nan")
    per_tenant_p99: list[float] = field(default_factory=list)


def _post_tenant(base: str, token: str, name: str, email: str) -> str:
    body = json.dumps({"name": name, "admin_email": email}).encode()
    request = urllib.request.Request(
        f"{base}/api/tenants", body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as reply:
        tenant_id: str = json.loads(reply.read())["id"]
    return tenant_id


def _wait_active(stack: Stack, tenant_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with stack.catalog() as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT status FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
            if row and row[0] == "Active":
                return
            if row and row[0] == "Failed":
                raise RuntimeError(f"tenant {tenant_id} failed to provision")
            time.sleep(0.01)
    raise TimeoutError(f"tenant {tenant_id} not Active in {timeout:.0f} s")


def run_toast(stack: Stack, token: str, admins: int, tenants: int, inflight: int) -> ToastResult:
    tokens = [token, *stack.extra_admins(admins - 1)]
    tokens_file = stack.work / "tokens.json"
    tokens_file.write_text(json.dumps(tokens))
    with (stack.work / "toast-node.log").open("w") as node_log:
        config = {"url": f"{stack.base}/hubs/notifications", "tokens": str(tokens_file),
                  "inflight": inflight}  # fmt: skip
        node = NodeProcess("toast.mjs", config, node_log)
        try:
            connected = node.expect("connected", timeout=180)
            log(f"{connected['ok']} admins connected in {connected['ms'] / 1000:.1f} s "
                f"({connected['failed']} failed: {connected['error']})")  # fmt: skip
            # one tenant first, unmeasured: the worker's and the hub's first use of each path
            _wait_active(stack, _post_tenant(stack.base, token, f"E2E {stack.tag} warm",
                                             f"warm@{stack.tag}.e2e.bench"))  # fmt: skip
            time.sleep(0.5)
            node.command("collect")
            node.expect("collected", timeout=30)
            made: dict[str, str] = {}
            for i in range(tenants):
                name = f"E2E {stack.tag} toast {i}"
                tenant_id = _post_tenant(stack.base, token, name, f"toast{i}@{stack.tag}.e2e.bench")
                made[tenant_id] = name
                _wait_active(stack, tenant_id)
                time.sleep(0.2)  # let every connection get it before the next one starts
            time.sleep(1.0)
            node.command("collect")
            got = node.expect("collected", timeout=60)
        finally:
            node.stop()
    with stack.catalog() as conn:
        rows = conn.execute(
            "SELECT id, updated_at FROM tenants WHERE id = ANY(%s)", (list(made),)
        ).fetchall()
    activated = {str(r[0]): r[1].timestamp() * 1000 for r in rows}
    delays: list[float] = []
    per_tenant: list[float] = []
    firsts: list[float] = []
    lasts: list[float] = []
    for tenant_id, at in activated.items():
        mine = [t - at for t in got["active"].get(tenant_id, [])]
        delays.extend(mine)
        per_tenant.append(percentile(mine, 99))
        if mine:
            firsts.append(min(mine))
            lasts.append(max(mine))
    toast_delays = [
        t - activated[tenant_id]
        for tenant_id, name in made.items()
        for t in got["toasts"].get(f"Tenant {name} is ready.", [])
    ]
    return ToastResult(
        admins=admins, connected=connected["ok"], connect_seconds=connected["ms"] / 1000,
        tenants=len(made), deliveries=len(delays), expected=len(made) * connected["ok"],
        p50=percentile(delays, 50), p90=percentile(delays, 90), p99=percentile(delays, 99),
        max=max(delays, default=float("nan")), toast_p50=percentile(toast_delays, 50),
        toast_max=max(toast_delays, default=float("nan")), toasts=len(toast_delays),
        first_p50=percentile(firsts, 50), last_p50=percentile(lasts, 50),
        per_tenant_p99=per_tenant,
    )  # fmt: skip


@contextlib.contextmanager
def profiled(stack: Stack, into: Path | None, part: str) -> Any:
    """With ``into``: ``py-spy record`` each diquis process while ``part`` runs."""
    if into is None:
        yield
        return
    into.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    spies = [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "-p",
                str(proc.pid),
                "-f",
                "raw",
                "-r",
                "250",
                "--gil",
                "-o",
                str(into / f"{part}-{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, proc in stack.procs.items()
    ]
    try:
        yield
    finally:
        for proc in spies:
            proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            end(proc)


# -- report ---------------------------------------------------------------------------------


def load_table(steps: list[LoadStep]) -> str:
    lines = [
        "| clients | loop | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors "
        "| serve CPU ms/req | worker CPU s | backlog after |",
        "|--:|--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in steps:
        lines.append(
            f"| {s.clients} | {'closed' if not s.rate else f'open {s.rate:g}/s'} "
            f"| {s.requests} | {s.rps:,.0f} | {s.p50:.1f} | {s.p90:.1f} "
            f"| {s.p99:.1f} | {s.max:.1f} | {s.errors} | {s.cpu_serve * 1000 / s.requests:.2f} "
            f"| {s.cpu_worker:.1f} | {s.backlog} |"
        )
    return "\n".join(lines)


def toast_table(t: ToastResult) -> str:
    return "\n".join(
        [
            "| admins connected | tenants | deliveries | p50 ms | p90 ms | p99 ms | max ms "
            "| first / last connection p50 ms | initiator's toast p50 / max ms |",
            "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
            f"| {t.connected} of {t.admins} | {t.tenants} | {t.deliveries} of {t.expected} "
            f"| {t.p50:.1f} | {t.p90:.1f} | {t.p99:.1f} | {t.max:.1f} "
            f"| {t.first_p50:.1f} / {t.last_p50:.1f} "
            f"| {t.toast_p50:.1f} / {t.toast_max:.1f} ({t.toasts}) |",
        ]
    )


def verdicts(steps: list[LoadStep], toast: ToastResult | None) -> list[str]:
    lines = []
    at = [s for s in steps if s.clients == LOAD_TARGET_CLIENTS and not s.rate]
    if at:
        s = at[0]
        met = s.p99 <= LOAD_TARGET_P99_MS and s.errors == 0
        lines.append(
            f"POST /api/tenants p99 at {LOAD_TARGET_CLIENTS} closed-loop clients: {s.p99:.1f} ms "
            f"(target <= {LOAD_TARGET_P99_MS:g} ms): target {'met' if met else 'missed'}"
        )
    if toast is not None:
        complete = toast.deliveries == toast.expected and toast.connected == toast.admins
        met = toast.p99 <= TOAST_TARGET_P99_MS and complete
        lines.append(
            f"Active -> hub p99 with {toast.connected} admins: {toast.p99:.1f} ms "
            f"(target <= {TOAST_TARGET_P99_MS:g} ms, every delivery made: {complete}): "
            f"target {'met' if met else 'missed'}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--clients", default="1,10,25,50", help="load steps, comma-separated")
    parser.add_argument("--requests", type=int, default=200, help="POSTs per load step")
    parser.add_argument(
        "--rates", default="",
        help="then open-loop steps at these requests/s over --open-clients connections",
    )  # fmt: skip
    parser.add_argument("--open-clients", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured POSTs first")
    parser.add_argument("--admins", type=int, default=1000, help="connected super admins")
    parser.add_argument("--toasts", type=int, default=20, help="tenants timed to the hub")
    parser.add_argument("--inflight", type=int, default=50, help="hub connects at a time")
    parser.add_argument("--only", default="toast,load", help="toast, load or both")
    parser.add_argument("--worker-concurrency", type=int, default=10)
    parser.add_argument(
        "--workers", type=int, default=1,
        help="diquis worker processes (0: nothing provisions; to see the API on its own)",
    )  # fmt: skip
    parser.add_argument("--log-level", default="INFO", help="of serve and worker (INFO ships)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--profile", type=Path,
        help="py-spy the processes during each part into this dir (collapsed stacks)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the logs' temp dir")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}

    work = Path(tempfile.mkdtemp(prefix="diquis-e2e-"))
    stack = Stack(args.pg_url, work, args.log_level, args.worker_concurrency, args.workers)
    steps: list[LoadStep] = []
    toast: ToastResult | None = None
    try:
        stack.setup()
        stack.start()
        token, _ = stack.login()
        if "toast" in parts:
            with profiled(stack, args.profile, "toast"):
                toast = run_toast(stack, token, args.admins, args.toasts, args.inflight)
        if "load" in parts:
            plan = [(int(c), 0.0) for c in args.clients.split(",") if c.strip()]
            plan += [(args.open_clients, float(r)) for r in args.rates.split(",") if r.strip()]
            with profiled(stack, args.profile, "load"):
                steps = run_load(stack, token, plan, args.requests, args.warmup)
    finally:
        stack.stop()
        stack.drop()
        log(f"logs in {work}" if args.keep else "")
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    print(f"\n# End to end: diquis serve --no-worker + 1 diquis worker on PostgreSQL "
          f"({os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')})\n")  # fmt: skip
    if toast is not None:
        print("Active -> TenantStatusChanged(Active) at every connected super admin:\n")
        print(toast_table(toast) + "\n")
    if steps:
        print(
            "POST /api/tenants over keep-alive connections; closed loop: each client waits "
            "for its answer; open loop: requests due at a fixed rate, timed from when due:\n"
        )
        print(load_table(steps) + "\n")
    for line in verdicts(steps, toast):
        print(line)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"load": [asdict(s) for s in steps], "toast": asdict(toast) if toast else None},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
