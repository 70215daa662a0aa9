// A stand-in for @microsoft/signalr's builder and connection, driven by the tests.
import { vi } from "vitest";

type Handler = (...args: unknown[]) => void;

export class FakeConnection {
  readonly url: string;
  readonly options: { accessTokenFactory?: () => string | Promise<string> };
  readonly retryPolicy: unknown;
  handlers = new Map<string, Handler[]>();
  reconnectingCallbacks: ((error?: Error) => void)[] = [];
  reconnectedCallbacks: ((connectionId?: string) => void)[] = [];
  closeCallbacks: ((error?: Error) => void)[] = [];
  /** start() rejects while `fake.failingStarts` is above zero (the server is down). */
  start = vi.fn(() => {
    if (fake.failingStarts > 0) {
      fake.failingStarts -= 1;
      return Promise.reject(new Error("server unreachable"));
    }
    return Promise.resolve();
  });
  stop = vi.fn(() => Promise.resolve());

  constructor(url: string, options: FakeConnection["options"], retryPolicy: unknown) {
    this.url = url;
    this.options = options;
    this.retryPolicy = retryPolicy;
  }

  on(method: string, handler: Handler): void {
    const list = this.handlers.get(method.toLowerCase()) ?? [];
    list.push(handler);
    this.handlers.set(method.toLowerCase(), list);
  }

  onreconnecting(callback: (error?: Error) => void): void {
    this.reconnectingCallbacks.push(callback);
  }

  onreconnected(callback: (connectionId?: string) => void): void {
    this.reconnectedCallbacks.push(callback);
  }

  onclose(callback: (error?: Error) => void): void {
    this.closeCallbacks.push(callback);
  }

  /** The server invokes `method` on this client. */
  serverSends(method: string, ...args: unknown[]): void {
    for (const handler of this.handlers.get(method.toLowerCase()) ?? []) handler(...args);
  }

  /** The transport dropped; the client starts its automatic reconnect. */
  dropped(): void {
    for (const callback of this.reconnectingCallbacks) callback(new Error("connection lost"));
  }

  /** The automatic reconnect succeeded. */
  reconnected(): void {
    for (const callback of this.reconnectedCallbacks) callback("new-id");
  }

  /** The connection closed for good (e.g. reconnect gave up or the server said no). */
  closed(): void {
    for (const callback of this.closeCallbacks) callback(new Error("closed"));
  }
}

export const fake = {
  connections: [] as FakeConnection[],
  automaticReconnectCalls: 0,
  statefulReconnectCalls: 0,
  failingStarts: 0,
  reset(): void {
    this.connections = [];
    this.automaticReconnectCalls = 0;
    this.statefulReconnectCalls = 0;
    this.failingStarts = 0;
  },
  get last(): FakeConnection {
    const connection = this.connections[this.connections.length - 1];
    if (!connection) throw new Error("no connection was built");
    return connection;
  },
};

class FakeBuilder {
  private url = "";
  private options: FakeConnection["options"] = {};
  private retryPolicy: unknown = undefined;

  withUrl(url: string, options: FakeConnection["options"] = {}): this {
    this.url = url;
    this.options = options;
    return this;
  }

  withAutomaticReconnect(policy?: unknown): this {
    fake.automaticReconnectCalls += 1;
    this.retryPolicy = policy;
    return this;
  }

  withStatefulReconnect(): this {
    fake.statefulReconnectCalls += 1;
    return this;
  }

  configureLogging(): this {
    return this;
  }

  build(): FakeConnection {
    const connection = new FakeConnection(this.url, this.options, this.retryPolicy);
    fake.connections.push(connection);
    return connection;
  }
}

/** The module factory for vi.mock("@microsoft/signalr", ...). */
export function signalRModule() {
  return {
    HubConnectionBuilder: FakeBuilder,
    LogLevel: { Trace: 0, Debug: 1, Information: 2, Warning: 3, Error: 4, Critical: 5, None: 6 },
  };
}
