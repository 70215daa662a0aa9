// One hub connection shared app-wide, and small hooks to listen to it.
import { createContext, useContext, useEffect, useRef, type ReactNode } from "react";
import { useSignalR, type HubHandler, type SignalRConnection } from "./hooks/useSignalR";

export const HUB_URL = "/hubs/notifications";

const noop = () => () => undefined;
const offline: SignalRConnection = { state: "disconnected", on: noop, onReconnected: noop };

const RealtimeContext = createContext<SignalRConnection>(offline);

/** Connects to the notifications hub while there is a session token. */
export function RealtimeProvider({ token, children }: { token: string | null; children: ReactNode }) {
  const connection = useSignalR(HUB_URL, token);
  return <RealtimeContext.Provider value={connection}>{children}</RealtimeContext.Provider>;
}

/** The shared connection (its state, `on`, `onReconnected`). */
export function useRealtime(): SignalRConnection {
  return useContext(RealtimeContext);
}

/** Run `handler` for each `method` message while the calling component is mounted. */
export function useHubEvent(method: string, handler: HubHandler): void {
  const { on } = useRealtime();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => on(method, (...args) => latest.current(...args)), [on, method]);
}

/** Run `listener` each time the hub connection comes back after being lost. */
export function useReconnected(listener: () => void): void {
  const { onReconnected } = useRealtime();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => onReconnected(() => latest.current()), [onReconnected]);
}
