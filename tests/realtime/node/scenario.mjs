// Drives the Diquis hub with the official @microsoft/signalr client.
// Usage: node scenario.mjs <scenario> '<json config>'; prints one JSON result per line.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import readline from "node:readline";

const [scenario, rawConfig] = process.argv.slice(2);
const config = JSON.parse(rawConfig);
const transport = signalR.HttpTransportType[config.transport ?? "WebSockets"];

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function build(url, token, extra = {}) {
  const options = { transport, skipNegotiation: !!config.skipNegotiation, ...extra };
  if (token !== undefined) options.accessTokenFactory = () => token;
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(url, options)
    .configureLogging(signalR.LogLevel.None);
  if (config.reconnect) builder = builder.withAutomaticReconnect([0, 200, 500, 1000, 1000, 1000, 2000, 2000]);
  if (config.protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
  if (config.stateful) builder = builder.withStatefulReconnect();
  return builder.build();
}

function collector(connection, method) {
  const received = [];
  const waiters = [];
  connection.on(method, (...args) => {
    received.push(args);
    while (waiters.length && waiters[0].n <= received.length) waiters.shift().resolve();
  });
  return {
    received,
    wait(n, ms = 5000) {
      if (received.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${method} #${n}`)), ms);
        waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
      });
    },
  };
}

async function settle(promise) {
  try {
    return { ok: await promise };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

async function basic() {
  const c = build(config.url, config.token);
  const notes = collector(c, "ReceiveNotification");
  const groupMsgs = collector(c, "ReceiveGroup");
  await c.start();
  const out = { connectionIdSet: !!c.connectionId };
  out.string = await c.invoke("Echo", "hello");
  out.unicode = await c.invoke("echo", "héllo wörld ✓ 日本語 🎉");
  out.number = await c.invoke("Add", 2, 3.5);
  out.nested = await c.invoke("Echo", { a: [1, 2, { b: null, c: true }], d: "x" });
  out.whoami = await c.invoke("WhoAmI");
  out.caseInsensitive = await c.invoke("ECHO", 42);
  await c.invoke("NotifyCaller", { text: "to the caller" });
  await notes.wait(1);
  out.notification = notes.received[0];
  await c.invoke("JoinGroup", "blue");
  await c.invoke("SendToGroup", "blue", "first");
  await groupMsgs.wait(1);
  await c.invoke("LeaveGroup", "blue");
  await c.invoke("SendToGroup", "blue", "second");
  await c.invoke("NotifyCaller", "marker");
  await notes.wait(2);
  out.group = groupMsgs.received;
  out.stream = await new Promise((resolve, reject) => {
    const items = [];
    c.stream("Counter", 4).subscribe({ next: (i) => items.push(i), error: reject, complete: () => resolve(items) });
  });
  out.fail = await settle(c.invoke("Fail"));
  out.refuse = await settle(c.invoke("Refuse"));
  out.missing = await settle(c.invoke("NoSuchMethod"));
  out.private = await settle(c.invoke("_private"));
  out.wrongArgs = await settle(c.invoke("Add", 1));
  out.afterErrors = await c.invoke("Echo", "still alive");
  await c.stop();
  emit(out);
}

async function users() {
  const a1 = build(config.url, config.tokens.alice);
  const a2 = build(config.url, config.tokens.alice);
  const b = build(config.url, config.tokens.bob);
  const ca1 = collector(a1, "ReceiveNotification");
  const ca2 = collector(a2, "ReceiveNotification");
  const cb = collector(b, "ReceiveNotification");
  await Promise.all([a1.start(), a2.start(), b.start()]);
  await b.invoke("SendToUser", "alice", "from bob");
  await Promise.all([ca1.wait(1), ca2.wait(1)]);
  emit({ ready: true });
  // The test now posts to the app's HTTP route, which uses the hub context.
  await Promise.all([ca1.wait(2), ca2.wait(2)]);
  await b.invoke("SendToUser", "bob", "bob marker");
  await cb.wait(1);
  emit({ alice1: ca1.received, alice2: ca2.received, bob: cb.received });
  await Promise.all([a1.stop(), a2.stop(), b.stop()]);
}

async function badToken() {
  const c = build(config.url, config.token);
  const result = await settle(c.start());
  emit({ result, state: c.state });
}

async function reconnect() {
  const c = build(config.url, config.token);
  const events = [];
  c.onreconnecting(() => events.push("reconnecting"));
  const reconnected = new Promise((resolve) => c.onreconnected(() => { events.push("reconnected"); resolve(); }));
  await c.start();
  const before = await c.invoke("Echo", "before");
  emit({ ready: true, before });
  await reconnected;
  const after = await c.invoke("Echo", "after");
  await c.stop();
  emit({ before, after, events });
}

async function listen() {
  // Connect one client per URL and report what each receives (cross-process tests).
  const connections = config.urls.map((url) => build(url, config.token));
  const collectors = connections.map((c) => collector(c, "ReceiveNotification"));
  await Promise.all(connections.map((c) => c.start()));
  emit({ ready: true });
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line.trim() === "done") break;
  }
  await Promise.all(collectors.map((k) => k.wait(config.expect ?? 1, 8000).catch(() => {})));
  emit({ received: collectors.map((k) => k.received) });
  await Promise.all(connections.map((c) => c.stop()));
}

async function lines() {
  const rl = readline.createInterface({ input: process.stdin });
  const it = rl[Symbol.asyncIterator]();
  return async () => (await it.next()).value?.trim();
}

async function messagepack() {
  // Types through the MessagePack protocol, both ways.
  const c = build(config.url, config.token);
  const typed = collector(c, "Typed");
  await c.start();
  const when = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 250));
  const bytes = new Uint8Array([0, 1, 2, 255]);
  const echoed = await c.invoke("Echo", [1, -2, 2 ** 40, 1.5, "héllo", null, true, { a: [1, { b: "c" }] }, bytes, when]);
  const out = {
    protocol: c.connection.transport?.constructor?.name,
    values: echoed.slice(0, 8),
    bytes: Array.from(echoed[8]),
    bytesIsUint8Array: echoed[8] instanceof Uint8Array,
    date: echoed[9] instanceof Date ? echoed[9].toISOString() : String(echoed[9]),
    add: await c.invoke("Add", 2, 3.5),
    whoami: (await c.invoke("WhoAmI")).user,
    stream: await new Promise((resolve, reject) => {
      const items = [];
      c.stream("Counter", 3).subscribe({ next: (i) => items.push(i), error: reject, complete: () => resolve(items) });
    }),
    refuse: await settle(c.invoke("Refuse")),
  };
  emit({ ready: true });
  await typed.wait(1);
  const [b, d, big, f, n] = typed.received[0];
  out.typed = [Array.from(b), d instanceof Date ? d.toISOString() : String(d), big, f, n];
  await c.stop();
  emit(out);
}

async function clientResults() {
  const c = build(config.url, config.token);
  c.on("GetLocation", (who) => ({ city: "Quito", asked: who }));
  c.on("Broken", () => { throw new Error("no location here"); });
  c.on("Slow", () => new Promise(() => {}));
  await c.start();
  emit({ connectionId: c.connectionId });
  const next = await lines();
  while ((await next()) !== "done") { /* the test asks the server to call us */ }
  await c.stop();
  emit({ stopped: true });
}

async function upload() {
  const c = build(config.url, config.token);
  const uploaded = collector(c, "Uploaded");
  await c.start();
  const numbers = new signalR.Subject();
  const sum = c.invoke("SumStream", 10, numbers);
  for (let i = 1; i <= 5; i++) numbers.next(i);
  numbers.complete();
  const out = { sum: await sum };
  const items = new signalR.Subject();
  await c.send("UploadStream", items);
  items.next("a"); items.next({ b: 2 }); items.next([3]);
  items.complete();
  await uploaded.wait(1);
  const failing = new signalR.Subject();
  await c.send("UploadStream", failing);
  failing.next(1);
  failing.error(new Error("client gave up"));
  await uploaded.wait(2);
  out.uploaded = uploaded.received;
  out.after = await c.invoke("Echo", "still alive");
  await c.stop();
  emit(out);
}

async function expiry() {
  const c = build(config.url, config.token);
  const closed = new Promise((resolve) => c.onclose((error) => resolve(error ? String(error.message ?? error) : null)));
  await c.start();
  emit({ ready: true, echo: await c.invoke("Echo", "before expiry") });
  emit({ closed: await closed, state: c.state });
}

async function stateful() {
  const c = build(config.url, config.token);
  const ticks = collector(c, "Tick");
  const events = [];
  c.onreconnecting(() => events.push("reconnecting"));
  c.onclose((e) => events.push("closed " + (e?.message ?? "")));
  await c.start();
  emit({ ready: true, connectionId: c.connectionId });
  // Meanwhile the test cuts the TCP connection under us, more than once.
  for (let i = 0; i < config.sends; i++) {
    await c.send("Record", i);
    await new Promise((r) => setTimeout(r, config.sendInterval));
  }
  await ticks.wait(config.ticks, 30000);
  const recorded = await c.invoke("Recorded");
  const sameConnection = c.connectionId;
  await c.stop();
  emit({ ticks: ticks.received.map((a) => a[0]), recorded, events, sameConnection });
}

async function many() {
  // Open config.count connections; report how each start went.
  const results = [];
  const conns = [];
  for (let i = 0; i < config.count; i++) {
    const c = build(config.url, config.token);
    results.push(await settle(c.start().then(() => "ok")));
    conns.push(c);
  }
  emit({ results });
  await Promise.all(conns.map((c) => c.stop()));
}

const scenarios = { basic, users, badToken, reconnect, listen, messagepack, clientResults, upload, expiry, stateful, many };
try {
  await scenarios[scenario]();
  process.exit(0);
} catch (e) {
  emit({ fatal: String(e.stack ?? e) });
  process.exit(1);
}
