// One time policy for the app: local time on the page, UTC in the tooltip, and relative
// times ("just now", "5 min ago") that keep ticking while the page is open.
import { useEffect, useState } from "react";
import { formatDateTime, formatRelative, formatUtc } from "./format";

/** How often relative times are recomputed (ms). */
export const TICK_MS = 20_000;

const listeners = new Set<(now: Date) => void>();
let timer: ReturnType<typeof setInterval> | null = null;

function subscribe(listener: (now: Date) => void): () => void {
  listeners.add(listener);
  timer ??= setInterval(() => {
    const now = new Date();
    listeners.forEach((notify) => notify(now));
  }, TICK_MS);
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
}

/** The current time, updated every TICK_MS by one shared timer. */
export function useNow(): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => subscribe(setNow), []);
  return now;
}

/** "just now" / "5 min ago" (or a local date), with the exact UTC time as its tooltip. */
export function RelativeTime({ iso }: { iso: string }) {
  const now = useNow();
  return (
    <time dateTime={iso} title={formatUtc(iso)}>
      {formatRelative(iso, now)}
    </time>
  );
}

/** A local date and time, with the UTC time as its tooltip. */
export function LocalTime({ iso }: { iso: string }) {
  return (
    <time dateTime={iso} title={formatUtc(iso)}>
      {formatDateTime(iso)}
    </time>
  );
}
