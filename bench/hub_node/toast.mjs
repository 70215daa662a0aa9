// Listener for bench/e2e.py: many super admins connected to `diquis serve`'s
// /hubs/notifications with the official @microsoft/signalr client, as the web app is.
//
// Usage: node toast.mjs '{"url": "...", "tokens": "/path/tokens.json", "inflight": 50}'
// tokens.json is a JSON list of access tokens, one connection each (accessTokenFactory,
// WebSockets, skipNegotiation, JSON protocol).
// Reads one JSON command per line on stdin, writes one JSON event per line on stdout:
//   (on start)           -> {"event":"connected","ok":n,"failed":n,"error":"...","ms":...}
//   {"cmd":"collect"}    -> {"event":"collected","active":{tenantId: [ms, ...]},
//                            "toasts":{tenantId: [ms, ...]},"closed":n}
//   {"cmd":"stop"}       -> {"event":"stopped"} and exit
// "active" holds, per tenant, when each connection received TenantStatusChanged with
// status Active (the badge every super admin sees turn green); "toasts" when a connection
// received ReceiveNotification (the initiator's toast; its message names the tenant, so it
// is keyed by that message). Times are wall-clock ms: performance.timeOrigin +
// performance.now(), the clock Python's time.time() reads.
import * as signalR from "@microsoft/signalr";
import WebSocket from "ws";
import readline from "node:readline";
import fs from "node:fs";

const config = JSON.parse(process.argv[2]);
const tokens = JSON.parse(fs.readFileSync(config.tokens, "utf8"));
const inflight = config.inflight ?? 50;
const origin = performance.timeOrigin;

let active = {};
let toasts = {};
let closed = 0;
const connections = [];

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function record(into, key) {
  const now = origin + performance.now();
  (into[key] ??= []).push(now);
}

function build(token) {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(config.url, {
      transport: signalR.HttpTransportType.WebSockets,
      skipNegotiation: true,
      accessTokenFactory: () => token,
      WebSocket,
    })
    .configureLogging(signalR.LogLevel.None)
    .build();
  connection.on("TenantStatusChanged", (event) => {
    if (event.status === "Active") record(active, event.id);
  });
  connection.on("ReceiveNotification", (_kind, message) => record(toasts, message));
  connection.on("TenantProgress", () => {});
  connection.onclose(() => {
    closed += 1;
  });
  return connection;
}

async function pool(items, limit, fn) {
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function connectAll() {
  const started = performance.now();
  let ok = 0;
  let failed = 0;
  let error = null;
  await pool(tokens, inflight, async (token) => {
    try {
      const connection = build(token);
      await connection.start();
      connections.push(connection);
      ok += 1;
    } catch (e) {
      failed += 1;
      error ??= String(e?.message ?? e);
    }
  });
  emit({ event: "connected", ok, failed, error, ms: performance.now() - started });
}

function collect() {
  emit({ event: "collected", active, toasts, closed });
  active = {};
  toasts = {};
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
