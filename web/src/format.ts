// Dates and small text helpers for display.

/** Parse the server's ISO timestamps; ones without a zone are UTC. */
export function parseTimestamp(iso: string): Date {
  const hasZone = /(?:Z|[+-]\d\d:?\d\d)$/i.test(iso);
  return new Date(hasZone ? iso : `${iso}Z`);
}

/** "just now", "5 min ago", "3 h ago", or a short date for anything older than a day. */
export function formatRelative(iso: string, now: Date = new Date()): string {
  const date = parseTimestamp(iso);
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  if (Number.isNaN(seconds)) return "";
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return formatDateTime(iso);
}

/** A short, locale-aware date and time. */
export function formatDateTime(iso: string): string {
  const date = parseTimestamp(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(
    date,
  );
}

/** The same instant in UTC, for tooltips: "2026-01-01 10:00:00 UTC". */
export function formatUtc(iso: string): string {
  const date = parseTimestamp(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

export interface TextPart {
  text: string;
  url?: string;
}

/** Split plain text into runs of text and http(s) links, for rendering without HTML. */
export function linkify(text: string): TextPart[] {
  const parts: TextPart[] = [];
  const pattern = /https?:\/\/[^\s<>"']+/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    // A sentence's closing punctuation is not part of the link.
    const url = match[0].replace(/[.,;:!?)]+$/, "");
    const start = match.index ?? 0;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: url, url });
    last = start + url.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}
