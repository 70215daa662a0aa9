// useSignalR: one hub connection that lives as long as the component using it.
//
// The connection is built with the official client, authenticates with the JWT through
// `accessTokenFactory` (sent as the `access_token` query parameter on WebSockets), and
// reconnects by itself. When a reconnect succeeds, subscribers of `onReconnected` are
// told, so pages re-fetch what they may have missed while the connection was down.
import {
  HubConnectionBuilder,
  LogLevel,
  type HubConnection,
  type IRetryPolicy,
  type RetryContext,
} from "@microsoft/signalr";
import { useCallback, useEffect, useRef, useState } from "react";

export type ConnectionState = "disconnected" | "connecting" | "connected" | "reconnecting";

// A server method's arguments arrive as decoded JSON of whatever shape the server sends.
export type HubHandler = (...args: any[]) => void;

export interface SignalRConnection {
  /** Where the connection is now; "reconnecting" while the client retries by itself. */
  state: ConnectionState;
  /** Call `handler` for every `method` the server sends; returns the unsubscribe function. */
  on: (method: string, handler: HubHandler) => () => void;
  /** Call `listener` each time the connection comes back after being lost. */
  onReconnected: (listener: () => void) => () => void;
}

/** Delays (ms) between reconnect attempts; the last one repeats, so it never gives up. */
export const RECONNECT_DELAYS_MS = [0, 1000, 2000, 5000, 10000, 15000];

/** The client's automatic reconnect policy: quick at first, then every 15 s, forever. */
export const foreverRetryPolicy: IRetryPolicy = {
  nextRetryDelayInMilliseconds(context: RetryContext): number {
    const index = Math.min(context.previousRetryCount, RECONNECT_DELAYS_MS.length - 1);
    return RECONNECT_DELAYS_MS[index] ?? 15000;
  },
};

/** Delay (ms) before starting again after a failed start or a closed connection. */
export function restartDelay(failures: number): number {
  const index = Math.min(failures + 1, RECONNECT_DELAYS_MS.length - 1);
  return RECONNECT_DELAYS_MS[index] ?? 15000;
}

/**
 * Connect to the hub at `hubUrl` while `token` is set; disconnect on unmount or when the
 * token changes. Handlers registered with `on` survive reconnects and new connections.
 */
export function useSignalR(hubUrl: string, token: string | null): SignalRConnection {
  const [state, setState] = useState<ConnectionState>("disconnected");
  const handlers = useRef(new Map<string, Set<HubHandler>>());
  const reconnectedListeners = useRef(new Set<() => void>());
  const connectionRef = useRef<HubConnection | null>(null);
  const boundMethods = useRef(new Set<string>());
  const tokenRef = useRef(token);
  tokenRef.current = token;

  const bind = useCallback((connection: HubConnection, method: string) => {
    if (boundMethods.current.has(method)) return;
    boundMethods.current.add(method);
    connection.on(method, (...args: unknown[]) => {
      for (const handler of [...(handlers.current.get(method) ?? [])]) handler(...args);
    });
  }, []);

  useEffect(() => {
    if (!token) {
      setState("disconnected");
      return undefined;
    }
    let disposed = false;
    let everConnected = false;
    let failures = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;

    const connection = new HubConnectionBuilder()
      .withUrl(hubUrl, { accessTokenFactory: () => tokenRef.current ?? "" })
      .withAutomaticReconnect(foreverRetryPolicy)
      .withStatefulReconnect()
      .configureLogging(LogLevel.Warning)
      .build();
    connectionRef.current = connection;
    boundMethods.current = new Set();
    for (const method of handlers.current.keys()) bind(connection, method);

    const announceReconnected = () => {
      for (const listener of [...reconnectedListeners.current]) listener();
    };

    const start = () => {
      timer = undefined;
      setState(everConnected ? "reconnecting" : "connecting");
      connection.start().then(
        () => {
          if (disposed) return;
          failures = 0;
          setState("connected");
          if (everConnected) announceReconnected();
          everConnected = true;
        },
        () => {
          if (disposed) return;
          // The server is down or refused us: try again later, as the client would.
          setState(everConnected ? "reconnecting" : "disconnected");
          timer = setTimeout(start, restartDelay(failures));
          failures += 1;
        },
      );
    };

    connection.onreconnecting(() => {
      if (!disposed) setState("reconnecting");
    });
    connection.onreconnected(() => {
      if (disposed) return;
      setState("connected");
      announceReconnected();
    });
    connection.onclose(() => {
      if (disposed) return;
      // Closed for good by the client (e.g. the server went away without a reconnectable
      // transport): start a fresh connection rather than staying offline.
      setState("reconnecting");
      timer = setTimeout(start, restartDelay(failures));
      failures += 1;
    });

    start();

    return () => {
      disposed = true;
      if (timer !== undefined) clearTimeout(timer);
      if (connectionRef.current === connection) connectionRef.current = null;
      setState("disconnected");
      void connection.stop().catch(() => undefined);
    };
  }, [hubUrl, token, bind]);

  const on = useCallback(
    (method: string, handler: HubHandler) => {
      let set = handlers.current.get(method);
      if (!set) {
        set = new Set();
        handlers.current.set(method, set);
      }
      set.add(handler);
      if (connectionRef.current) bind(connectionRef.current, method);
      return () => {
        handlers.current.get(method)?.delete(handler);
      };
    },
    [bind],
  );

  const onReconnected = useCallback((listener: () => void) => {
    reconnectedListeners.current.add(listener);
    return () => {
      reconnectedListeners.current.delete(listener);
    };
  }, []);

  return { state, on, onReconnected };
}
