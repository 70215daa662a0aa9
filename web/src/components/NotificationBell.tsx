// The bell: the stored inbox (so nothing sent while you were away is lost), unread count,
// mark as read. It re-reads the inbox on each new notification and after a reconnect.
import { useCallback, useEffect, useId, useRef, useState } from "react";
import type { Inbox, StoredNotification } from "../api";
import { useAuth } from "../auth";
import { Link } from "../router";
import { RelativeTime } from "../time";
import { useHubEvent, useReconnected } from "../realtime";

export function NotificationBell() {
  const { api } = useAuth();
  const [inbox, setInbox] = useState<Inbox>({ items: [], unread: 0 });
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const panelId = useId();
  const wrapper = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);

  const refresh = useCallback(() => {
    api.inbox().then(
      (next) => {
        setInbox(next);
        setError(null);
      },
      (e: Error) => setError(e.message),
    );
  }, [api]);

  useEffect(refresh, [refresh]);
  useHubEvent("ReceiveNotification", refresh);
  useReconnected(refresh);

  // Close on Escape (focus back to the bell) or on a click elsewhere.
  useEffect(() => {
    if (!open) return undefined;
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") {
        setOpen(false);
        button.current?.focus();
      }
    };
    const onPointer = (event: PointerEvent) => {
      if (wrapper.current && !wrapper.current.contains(event.target as Node)) setOpen(false);
    };
    document.addEventListener("keydown", onKey);
    document.addEventListener("pointerdown", onPointer);
    return () => {
      document.removeEventListener("keydown", onKey);
      document.removeEventListener("pointerdown", onPointer);
    };
  }, [open]);

  const markRead = async (items: StoredNotification[]) => {
    const now = new Date().toISOString();
    const ids = new Set(items.map((item) => item.id));
    setInbox((current) => ({
      items: current.items.map((item) => (ids.has(item.id) ? { ...item, read_at: now } : item)),
      unread: Math.max(0, current.unread - ids.size),
    }));
    try {
      await Promise.all(items.map((item) => api.markRead(item.id)));
    } catch (e) {
      setError((e as Error).message);
    }
    refresh();
  };

  const unreadItems = inbox.items.filter((item) => !item.read_at);
  const label = inbox.unread
    ? `Notifications, ${inbox.unread} unread`
    : "Notifications, none unread";
  return (
    <div className="bell" ref={wrapper}>
      <button
        ref={button}
        type="button"
        className="icon-button"
        aria-label={label}
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((value) => !value)}
      >
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
          <path
            d="M12 3a6 6 0 0 0-6 6v3.6L4.3 15.4A1 1 0 0 0 5.2 17h13.6a1 1 0 0 0 .9-1.6L18 12.6V9a6 6 0 0 0-6-6Zm0 18a2.5 2.5 0 0 0 2.4-2h-4.8a2.5 2.5 0 0 0 2.4 2Z"
            fill="currentColor"
          />
        </svg>
        {inbox.unread > 0 && (
          <span className="bell-count" data-testid="unread-count" aria-hidden="true">
            {inbox.unread > 99 ? "99+" : inbox.unread}
          </span>
        )}
      </button>
      <div id={panelId} className="inbox" role="region" aria-label="Notifications" hidden={!open}>
        <div className="inbox-head">
          <h2>Notifications</h2>
          {unreadItems.length > 0 && (
            <button type="button" className="link-button" onClick={() => void markRead(unreadItems)}>
              Mark all read
            </button>
          )}
        </div>
        {error && <p className="inbox-error">{error}</p>}
        {inbox.items.length === 0 ? (
          <p className="inbox-empty">No notifications yet. They will appear here, even those sent while you were away.</p>
        ) : (
          <ul className="inbox-list">
            {inbox.items.map((item) => (
              <li key={item.id} className={item.read_at ? "inbox-item" : "inbox-item unread"}>
                <span className={`inbox-kind kind-${item.type.toLowerCase()}`} aria-hidden="true" />
                <div className="inbox-body">
                  <p>
                    <span className="visually-hidden">
                      {item.read_at ? "" : "Unread. "}
                      {item.type}:{" "}
                    </span>
                    {item.message}
                  </p>
                  <div className="inbox-meta">
                    <RelativeTime iso={item.created_at} />
                    {item.link && (
                      <Link to={item.link} className="inbox-link" onClick={() => setOpen(false)}>
                        View tenant
                      </Link>
                    )}
                  </div>
                </div>
                {!item.read_at && (
                  <button
                    type="button"
                    className="link-button"
                    onClick={() => void markRead([item])}
                    aria-label={`Mark read: ${item.message}`}
                  >
                    Mark read
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
      </div>
    </div>
  );
}
