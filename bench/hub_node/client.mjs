// Load client for bench/hub.py: holds many connections of the official @microsoft/signalr
// client (WebSockets, skipNegotiation, JSON protocol) and measures broadcast delivery.
//
// Usage: node client.mjs '{"url": "...", "count": 2500, "inflight": 100}'
// Reads one JSON command per line on stdin, writes one JSON event per line on stdout:
//   (on start)               -> {"event":"connected","ok":n,"failed":n,"error":"...","ms":...}
//   {"cmd":"collect"}        -> {"event":"collected","steps":{step: {count, first, last, hist}},
//                                "closed":n,"fewest":n}
//   {"cmd":"stop"}           -> {"event":"stopped"} and exit
// Each `tick(step, seq, sentMs, payload)` invocation is timed against the sender's wall clock
// (performance.timeOrigin + performance.now(), the same clock as Python's time.time()).
import * as signalR from "@microsoft/signalr";
import WebSocket from "ws";
import readline from "node:readline";

const config = JSON.parse(process.argv[2]);
const inflight = config.inflight ?? 100;

// Latency histogram: 0.1 ms buckets below 1 s, 10 ms buckets from 1 s to 60 s.
const FINE = 10000;
const BUCKETS = FINE + 5900;
function bucket(ms) {
  if (ms < 0) return 0;
  if (ms < 1000) return Math.floor(ms * 10);
  return Math.min(BUCKETS - 1, FINE + Math.floor((ms - 1000) / 10));
}

let steps = new Map();
function stepStats(step) {
  let s = steps.get(step);
  if (s === undefined) {
    s = { count: 0, first: Infinity, last: 0, hist: new Uint32Array(BUCKETS) };
    steps.set(step, s);
  }
  return s;
}

const origin = performance.timeOrigin;
let closed = 0;
const connections = [];
const received = [];
const live = [];

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function build(index) {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(config.url, {
      transport: signalR.HttpTransportType.WebSockets,
      skipNegotiation: true,
      WebSocket,
    })
    .configureLogging(signalR.LogLevel.None)
    .build();
  received[index] = 0;
  connection.on("tick", (step, seq, sentMs) => {
    const now = origin + performance.now();
    const s = stepStats(step);
    s.count += 1;
    if (now < s.first) s.first = now;
    if (now > s.last) s.last = now;
    s.hist[bucket(now - sentMs)] += 1;
    received[index] += 1;
  });
  connection.onclose(() => {
    closed += 1;
  });
  return connection;
}

async function pool(items, limit, fn) {
  let next = 0;
  const results = [];
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function connectAll() {
  const started = performance.now();
  let ok = 0;
  let failed = 0;
  let error = null;
  const indexes = Array.from({ length: config.count }, (_, i) => i);
  await pool(indexes, inflight, async (i) => {
    try {
      const connection = build(i);
      await connection.start();
      connections.push(connection);
      live.push(i);
      ok += 1;
    } catch (e) {
      failed += 1;
      error ??= String(e?.message ?? e);
    }
  });
  emit({ event: "connected", ok, failed, error, ms: performance.now() - started });
}

function collect() {
  const out = {};
  for (const [step, s] of steps) {
    const hist = [];
    for (let i = 0; i < BUCKETS; i++) if (s.hist[i]) hist.push([i, s.hist[i]]);
    out[step] = { count: s.count, first: s.first, last: s.last, hist };
  }
  steps = new Map();
  // The fewest ticks any live connection got since the last collect.
  let fewest = Infinity;
  for (const i of live) if (received[i] < fewest) fewest = received[i];
  received.fill(0);
  emit({ event: "collected", steps: out, closed, fewest: fewest === Infinity ? 0 : fewest });
}

async function stopAll() {
  await pool(connections, inflight, (c) => c.stop().catch(() => {}));
  emit({ event: "stopped" });
  process.exit(0);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "collect") collect();
  else if (command.cmd === "stop") void stopAll();
});
rl.on("close", () => process.exit(0));

await connectAll();
