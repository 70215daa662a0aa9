"""Real-time hub benchmark: diquis.realtime next to aiosignalr, driven by the official client.

Every server runs in its own process (``bench/hub_server.py``) under ``diquis serve``'s own
uvicorn configuration (``diquis.webserver.uvicorn_config``: uvloop, httptools, the sans-IO
WebSocket protocol with the hub's socket takeover, no WS-level pings, permessage-deflate
off unless ``--deflate``). For each server and each connection count C, the driver:

1. starts the server and reads its RSS (``VmRSS`` in ``/proc/<pid>/status``);
2. starts ``--clients`` Node processes (``bench/hub_node/client.mjs``) that open C
   WebSocket connections between them with the official ``@microsoft/signalr`` client
   (skipNegotiation, JSON protocol), waits until the server counts C handshaken
   connections, and reads the RSS again: RSS per connection = (after - before) / C;
3. runs broadcast steps: the server broadcasts ``tick(step, seq, sent_ms, payload)`` to
   every connection, paced at R broadcasts/s for ``--step-seconds`` (a ramp of rates,
   stopped once p99 passes ``--stop-p99`` ms or messages go missing), then one burst
   of back-to-back broadcasts. ``sent_ms`` is ``time.time()*1000`` taken before the
   broadcast call; each client times a delivery with ``performance.timeOrigin +
   performance.now()`` (the same wall clock), so latency = fan-out + network + client.
   Delivered msgs/s = deliveries / (last delivery - first send). The server also reports
   how long each broadcast call took (its fan-out), and both sides' CPU seconds are read
   from ``/proc``: CPU µs per message is steadier than wall time on a busy machine.

The table gives, per C, each server's RSS/conn, best paced step, burst, CPU per message and
the ratios to aiosignalr; then one "met"/"MISSED" line per issue-14 target (RSS/conn at
``--max-connections``, burst throughput ratio and p99 at ``--target-rate`` broadcasts/s at
``--connections``) and, for the latency target, the floor (fan-out, clients' CPU).
``--pin`` puts the server on CPU 0 and the Node clients on CPU 1 (``taskset``).

Run ``make bench-hub`` or ``.venv-bench/bin/python bench/hub.py --pin`` (``--help``);
``--only diquis,diquis-asgi`` compares the takeover with the hub over plain ASGI.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _procs import NODE_DIR, NodeProcess, cpu_seconds, end, free_port, raise_nofile  # noqa: E402

SERVERS = ("diquis", "diquis-asgi", "aiosignalr")
DEFAULT_SERVERS = "diquis,aiosignalr"  # diquis-asgi: the hub over plain ASGI, on request
FINE_BUCKETS = 10000  # the client's histogram: 0.1 ms buckets below 1 s, then 10 ms


# -- processes ---------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def http_json(url: str, method: str = "GET", timeout: float = 10.0) -> Any:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


# -- results -----------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    rate: float  # broadcasts/s asked for (0: back to back)
    broadcasts: int
    send_seconds: float  # how long the server took to make the broadcast calls
    expected: int
    delivered: int
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    clients_cpu_s: float
    wall_s: float
    fanout_ms: float = 0.0  # mean time of one broadcast call in the server
    fanout_max_ms: float = 0.0


@dataclass
class Run:
    server: str
    connections: int
    connected: int = 0
    connect_seconds: float = 0.0
    rss_before_kib: int = 0
    rss_connected_kib: int = 0
    rss_after_traffic_kib: int = 0
    rss_per_conn_kib: float = 0.0
    steps: list[Step] = field(default_factory=list)
    closed_by_server: int = 0
    error: str | None = None
    profile: str | None = None

    def best(self, max_p99: float = float("inf")) -> Step | None:
        """The fastest paced step that delivered every message, with p99 within `max_p99`."""
        ok = [
            s
            for s in self.steps
            if s.rate > 0 and s.delivered == s.expected and s.p99_ms <= max_p99
        ]
        return max(ok, key=lambda s: s.msgs_per_s, default=None)

    def burst(self) -> Step | None:
        return next((s for s in self.steps if s.rate == 0), None)


def merge_hist(into: dict[int, int], pairs: list[list[int]]) -> None:
    for index, count in pairs:
        into[index] = into.get(index, 0) + count


def bucket_ms(index: int) -> float:
    """Upper edge of a histogram bucket, in ms."""
    if index < FINE_BUCKETS:
        return (index + 1) / 10
    return 1000 + (index - FINE_BUCKETS + 1) * 10


def percentile(hist: dict[int, int], q: float) -> float:
    total = sum(hist.values())
    if not total:
        return float("nan")
    rank = q * total
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return bucket_ms(index)
    return bucket_ms(max(hist))


# -- one server at one connection count ----------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pin = args.pin and (os.cpu_count() or 1) >= 2

    def run(self, server: str, connections: int, rates: list[float], burst: bool) -> Run:
        args = self.args
        run = Run(server, connections)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(args.log_dir / f"{server}-{connections}.log", "w")  # noqa: SIM115
        command = [
            sys.executable,
            str(BENCH_DIR / "hub_server.py"),
            server,
            str(port),
        ]
        if self.pin and shutil.which("taskset"):
            command = ["taskset", "-c", "0", *command]
        env = {**os.environ, "DIQUIS_WS_DEFLATE": "1" if args.deflate else "0"}
        proc = subprocess.Popen(command, stdout=log, stderr=log, preexec_fn=raise_nofile, env=env)
        clients: list[NodeProcess] = []
        try:
            self._wait_ready(proc, base)
            time.sleep(0.5)
            run.rss_before_kib = rss_kib(proc.pid)
            shares = [connections // args.clients] * args.clients
            for i in range(connections % args.clients):
                shares[i] += 1
            started = time.monotonic()
            clients = [
                NodeProcess(
                    "client.mjs",
                    {
                        "url": f"http://127.0.0.1:{port}/hub",
                        "count": share,
                        "inflight": args.inflight,
                    },
                    log,
                    cpu=1 if self.pin else None,
                )
                for share in shares
                if share
            ]
            errors = []
            for client in clients:
                event = client.expect("connected", args.connect_timeout)
                run.connected += event["ok"]
                if event["failed"]:
                    errors.append(f"{event['failed']} failed: {event['error']}")
            run.connect_seconds = time.monotonic() - started
            if errors:
                run.error = "; ".join(errors)
            counted = self._wait_count(base, run.connected)
            if counted != run.connected:
                run.error = (run.error or "") + f" server counts {counted}/{run.connected}"
            time.sleep(1.0)
            run.rss_connected_kib = rss_kib(proc.pid)
            run.rss_per_conn_kib = (run.rss_connected_kib - run.rss_before_kib) / max(
                1, run.connected
            )
            print(
                f"  {server} C={connections}: {run.connected} connected in "
                f"{run.connect_seconds:.1f} s, {run.rss_per_conn_kib:.1f} KiB RSS/conn",
                flush=True,
            )
            step_id = 0
            for rate in rates:
                step_id += 1
                count = max(3, round(rate * args.step_seconds))
                step = self._step(proc, base, clients, run, step_id, f"{rate:g}/s", rate, count)
                run.steps.append(step)
                if (
                    step.p99_ms > args.stop_p99
                    or step.delivered < step.expected
                    or step.send_seconds > 1.5 * args.step_seconds
                ):
                    break
            if burst and run.connected:
                step_id += 1
                count = max(5, args.burst_deliveries // run.connected)
                run.steps.append(
                    self._step(proc, base, clients, run, step_id, "burst", 0, count, profile=True)
                )
            run.rss_after_traffic_kib = rss_kib(proc.pid)
        except Exception as exc:  # report what happened, keep the other runs going
            run.error = (run.error + "; " if run.error else "") + f"{type(exc).__name__}: {exc}"
        finally:
            for client in clients:
                if client.proc.poll() is None:
                    with contextlib.suppress(OSError):
                        client.command("stop")
            for client in clients:
                client.stop(timeout=20)
            end(proc)
            log.close()
        return run

    def _wait_ready(self, proc: subprocess.Popen[Any], base: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                http_json(base + "/bench/count", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("server did not start in 30 s")

    def _wait_count(self, base: str, expected: int) -> int:
        deadline = time.monotonic() + 15
        count = -1
        while time.monotonic() < deadline:
            count = int(http_json(base + "/bench/count")["connections"])
            if count >= expected:
                break
            time.sleep(0.2)
        return count

    def _step(
        self,
        proc: subprocess.Popen[Any],
        base: str,
        clients: list[NodeProcess],
        run: Run,
        step_id: int,
        name: str,
        rate: float,
        count: int,
        profile: bool = False,
    ) -> Step:
        args = self.args
        expected = count * run.connected
        cpu0 = cpu_seconds(proc.pid)
        ccpu0 = sum(cpu_seconds(c.proc.pid) for c in clients)
        wall0 = time.monotonic()
        spy = self._start_profile(proc, run, name) if profile else None
        query = f"step={step_id}&rate={rate}&count={count}&size={args.payload}"
        sent = http_json(base + "/bench/broadcast?" + query, "POST", timeout=120)
        # Collect until every message is in, or nothing new arrives for a while.
        hist: dict[int, int] = {}
        delivered = 0
        last_ms = 0.0
        idle_since = time.monotonic()
        deadline = time.monotonic() + args.drain_timeout
        while delivered < expected and time.monotonic() < deadline:
            time.sleep(0.25)
            before = delivered
            for client in clients:
                client.command("collect")
            for client in clients:
                event = client.expect("collected", 30)
                run.closed_by_server = max(run.closed_by_server, event["closed"])
                stats = event["steps"].get(str(step_id))
                if stats:
                    delivered += stats["count"]
                    last_ms = max(last_ms, stats["last"])
                    merge_hist(hist, stats["hist"])
            if delivered > before:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 3:
                break
        if spy is not None:
            self._stop_profile(spy)
        span = (last_ms - sent["first_ms"]) / 1000
        step = Step(
            name=name,
            rate=rate,
            broadcasts=sent["sent"],
            send_seconds=sent["seconds"],
            expected=expected,
            delivered=delivered,
            msgs_per_s=delivered / span if span > 0 else 0.0,
            p50_ms=percentile(hist, 0.50),
            p99_ms=percentile(hist, 0.99),
            max_ms=bucket_ms(max(hist)) if hist else float("nan"),
            server_cpu_s=cpu_seconds(proc.pid) - cpu0,
            clients_cpu_s=sum(cpu_seconds(c.proc.pid) for c in clients) - ccpu0,
            wall_s=time.monotonic() - wall0,
            fanout_ms=sent.get("call_ms_mean", 0.0),
            fanout_max_ms=sent.get("call_ms_max", 0.0),
        )
        print(
            f"    {name:>7}: {step.delivered}/{step.expected} delivered, "
            f"{step.msgs_per_s:,.0f} msgs/s, p50 {step.p50_ms:.1f} ms, p99 {step.p99_ms:.1f} ms"
            f" (server fan-out {step.fanout_ms:.1f} ms/broadcast, max {step.fanout_max_ms:.1f};"
            f" server CPU {step.server_cpu_s:.1f} s, clients {step.clients_cpu_s:.1f} s,"
            f" wall {step.wall_s:.1f} s)",
            flush=True,
        )
        return step

    def _start_profile(
        self, proc: subprocess.Popen[Any], run: Run, name: str
    ) -> subprocess.Popen[Any] | None:
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if not self.args.profile or spy is None:
            return None
        out = self.args.log_dir / f"profile-{run.server}-{run.connections}-{name}.txt"
        run.profile = str(out)
        return subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(proc.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _stop_profile(self, spy: subprocess.Popen[Any]) -> None:
        spy.send_signal(2)  # py-spy writes its output on SIGINT
        try:
            spy.wait(timeout=20)
        except subprocess.TimeoutExpired:
            end(spy)


# -- report -------------------------------------------------------------------------------


def cpu_us(seconds: float, step: Step) -> str:
    """CPU time per delivered message, in µs (steadier than wall time on a busy machine)."""
    return f"{seconds / step.delivered * 1e6:.1f}" if step.delivered else "—"


def table(runs: list[Run], target_p99: float) -> str:
    """Markdown: per connection count, each server's memory, best paced step and burst."""
    lines = [
        "| server | connections | RSS/conn KiB | paced msgs/s | p50 ms | p99 ms "
        f"| msgs/s at p99 ≤ {target_p99:g} ms | burst msgs/s | burst p50 / p99 ms "
        "| burst CPU µs/msg, server / clients | burst fan-out ms/broadcast | ratio |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    by_count: dict[int, dict[str, Run]] = {}
    for run in runs:
        by_count.setdefault(run.connections, {})[run.server] = run
    for _, servers in sorted(by_count.items()):
        peer = servers.get("aiosignalr")
        for name in SERVERS:
            run = servers.get(name)
            if run is None:
                continue
            best, burst, within = run.best(), run.burst(), run.best(target_p99)
            ratio = ""
            if name != "aiosignalr" and peer is not None:
                parts = []
                peer_best, peer_burst = peer.best(), peer.burst()
                if best and peer_best:
                    parts.append(f"{best.msgs_per_s / peer_best.msgs_per_s:.1f}× paced")
                if burst and peer_burst:
                    parts.append(f"{burst.msgs_per_s / peer_burst.msgs_per_s:.1f}× burst")
                ratio = ", ".join(parts)
            connected = f"{run.connected:,}" + (
                "" if run.connected == run.connections else f" of {run.connections:,}"
            )
            paced = (
                f"{best.msgs_per_s:,.0f} ({best.name}) | {best.p50_ms:.0f} | {best.p99_ms:.0f}"
                if best
                else "— | — | —"
            )
            bursted = (
                f"{burst.msgs_per_s:,.0f} | {burst.p50_ms:.0f} / {burst.p99_ms:.0f} | "
                f"{cpu_us(burst.server_cpu_s, burst)} / {cpu_us(burst.clients_cpu_s, burst)} | "
                f"{burst.fanout_ms:.0f}"
                if burst
                else "— | — | — | —"
            )
            lines.append(
                f"| {name} | {connected} | {run.rss_per_conn_kib:.1f} | {paced} | "
                f"{f'{within.msgs_per_s:,.0f}' if within else 'none'} | {bursted} | {ratio} |"
            )
    return "\n".join(lines)


def targets(runs: list[Run], args: argparse.Namespace) -> list[str]:
    """Issue 14's hub targets, each as a plain "met" / "missed" line (or why it was not run)."""
    found = {(r.server, r.connections): r for r in runs}
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    big = found.get(("diquis", args.max_connections))
    if big is not None and big.connected:
        lines.append(
            f"target RSS/conn ≤ {args.target_rss:g} KiB at {big.connections:,} connections: "
            f"{verdict(big.rss_per_conn_kib <= args.target_rss)} "
            f"({big.rss_per_conn_kib:.1f} KiB, {big.connected:,} connected)"
        )
    else:
        lines.append("target RSS/conn: not measured (no Diquis run at --max-connections)")
    ours = found.get(("diquis", args.connections))
    peer = found.get(("aiosignalr", args.connections))
    ours_burst = ours.burst() if ours else None
    peer_burst = peer.burst() if peer else None
    if ours_burst and peer_burst and peer_burst.msgs_per_s:
        ratio = ours_burst.msgs_per_s / peer_burst.msgs_per_s
        lines.append(
            f"target throughput ≥ {args.target_ratio:g}× aiosignalr at {args.connections:,} "
            f"connections (burst, delivered msgs/s): {verdict(ratio >= args.target_ratio)} "
            f"({ratio:.1f}×: {ours_burst.msgs_per_s:,.0f} vs {peer_burst.msgs_per_s:,.0f})"
        )
    else:
        lines.append("target throughput ratio: not measured (needs both servers' burst)")
    paced = next((s for s in ours.steps if s.rate == args.target_rate), None) if ours else None
    if paced is not None:
        ok = paced.p99_ms <= args.target_p99 and paced.delivered == paced.expected
        lines.append(
            f"target p99 ≤ {args.target_p99:g} ms at {args.target_rate:g} broadcasts/s, "
            f"{args.connections:,} connections: {verdict(ok)} "
            f"(p50 {paced.p50_ms:.1f} ms, p99 {paced.p99_ms:.1f} ms, "
            f"{paced.delivered:,}/{paced.expected:,} delivered)"
        )
        # The floor: the last socket of a broadcast is written one fan-out after the first,
        # and the clients spend this much CPU on each broadcast's messages.
        per_broadcast = paced.clients_cpu_s / max(1, paced.broadcasts) * 1000
        lines.append(
            f"  floor at that rate: server fan-out {paced.fanout_ms:.1f} ms per broadcast "
            f"(max {paced.fanout_max_ms:.1f}); the clients need {per_broadcast:.1f} ms of CPU "
            f"per broadcast ({cpu_us(paced.clients_cpu_s, paced)} µs/msg), the server "
            f"{cpu_us(paced.server_cpu_s, paced)} µs/delivery"
        )
    else:
        lines.append(
            f"target p99 at {args.target_rate:g}/s: not measured (add it to --rates, or the ramp "
            "stopped before it)"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        default=DEFAULT_SERVERS,
        help=f"servers, comma-separated, of {', '.join(SERVERS)}",
    )
    parser.add_argument("--connections", type=int, default=5000, help="C for the ramp")
    parser.add_argument(
        "--max-connections", type=int, default=15000, help="C for the memory run (0: skip)"
    )
    parser.add_argument("--clients", type=int, default=3, help="Node client processes")
    parser.add_argument("--inflight", type=int, default=100, help="connects in flight per client")
    parser.add_argument(
        "--rates",
        default="1,2,4,8,12,16,24",
        help="paced ramp, broadcasts/s at --connections",
    )
    parser.add_argument("--max-rates", default="1", help="paced steps at --max-connections")
    parser.add_argument("--step-seconds", type=float, default=3.0)
    parser.add_argument(
        "--burst-deliveries", type=int, default=400_000, help="deliveries in the burst step"
    )
    parser.add_argument("--payload", type=int, default=64, help="payload bytes per message")
    parser.add_argument("--target-p99", type=float, default=50.0)
    parser.add_argument("--target-rate", type=float, default=8.0, help="paced rate for p99")
    parser.add_argument("--target-rss", type=float, default=12.0, help="KiB/conn, Diquis")
    parser.add_argument("--target-ratio", type=float, default=5.0, help="× aiosignalr")
    parser.add_argument("--stop-p99", type=float, default=1000.0, help="end the ramp above this")
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="both servers with DIQUIS_WS_DEFLATE=1 (permessage-deflate offered)",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="server on CPU 0, Node clients on CPU 1",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server's burst")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--log-dir", type=Path, default=BENCH_DIR / "results" / "hub")
    args = parser.parse_args()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    if not (NODE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir():
        print(f"run `npm ci` in {NODE_DIR} first (make bench-hub does)", file=sys.stderr)
        return 2
    servers = [s for s in args.only.split(",") if s]
    rates = [float(r) for r in args.rates.split(",") if r]
    max_rates = [float(r) for r in args.max_rates.split(",") if r]
    bench = Bench(args)
    started = time.monotonic()
    runs: list[Run] = []
    plan = [(args.connections, rates, True)]
    if args.max_connections:
        plan.append((args.max_connections, max_rates, False))
    for connections, step_rates, burst in plan:
        for server in servers:
            print(f"{server}, {connections:,} connections", flush=True)
            run = bench.run(server, connections, step_rates, burst)
            if run.error:
                print(f"  error: {run.error}", flush=True)
            runs.append(run)
    print()
    print(table(runs, args.target_p99))
    print()
    print("\n".join(targets(runs, args)))
    print(
        f"\n{dt.date.today()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"diquis serve's uvicorn config{' + deflate' if args.deflate else ''} · "
        f"{args.clients} Node clients"
        f"{' · pinned' if bench.pin else ''} · {time.monotonic() - started:.0f} s"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": str(dt.date.today()),
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "runs": [asdict(r) for r in runs],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
