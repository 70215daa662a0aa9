import { useRealtime } from "../realtime";
import type { ConnectionState } from "../hooks/useSignalR";

const TEXT: Record<ConnectionState, { label: string; title: string }> = {
  connected: { label: "Live", title: "Live updates are on." },
  connecting: { label: "Connecting…", title: "Connecting to live updates…" },
  reconnecting: {
    label: "Reconnecting…",
    title: "The connection was lost; reconnecting. Nothing will be missed.",
  },
  disconnected: { label: "Offline", title: "Live updates are off; retrying in the background." },
};

/** A discreet dot and word saying whether live updates are flowing. */
export function ConnectionIndicator() {
  const { state } = useRealtime();
  const text = TEXT[state];
  return (
    <span className={`connection connection-${state}`} data-state={state} title={text.title}>
      <span className="connection-dot" aria-hidden="true" />
      <span className="connection-label">{text.label}</span>
    </span>
  );
}
