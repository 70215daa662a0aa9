import { useCallback, useEffect, useState } from "react";
import type { ApiError, MailItem } from "../api";
import { useAuth } from "../auth";
import { linkify } from "../format";
import { RelativeTime } from "../time";
import { useHubEvent, useReconnected } from "../realtime";
import { Link } from "../router";

const POLL_MS = 4000;

/** The development mailbox: e-mails the server "sent" while no SMTP server is configured. */
export function MailboxPage() {
  const { api } = useAuth();
  const [items, setItems] = useState<MailItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [disabled, setDisabled] = useState(false);

  const refresh = useCallback(() => {
    api.mailbox().then(
      (page) => {
        setItems(page.items);
        setError(null);
      },
      (e: ApiError) => {
        if (e.status === 404) setDisabled(true);
        else setError(e.message);
      },
    );
  }, [api]);

  useEffect(() => {
    refresh();
    // Welcome e-mails go out a moment after a tenant becomes Active; keep the list fresh.
    const timer = setInterval(refresh, POLL_MS);
    return () => clearInterval(timer);
  }, [refresh]);
  useReconnected(refresh);
  useHubEvent("TenantStatusChanged", refresh);

  return (
    <div className="stack">
      <div className="page-head">
        <div>
          <h1>Mailbox</h1>
          <p className="muted">
            Development mode keeps outgoing e-mail here instead of sending it, newest first.
          </p>
        </div>
        <button type="button" className="button button-ghost" onClick={refresh}>
          Refresh
        </button>
      </div>
      {disabled ? (
        <div className="card empty">
          <p>The development mailbox is off.</p>
          <p className="muted">
            Start the server with <code>DIQUIS_DEV=1</code> (and no <code>DIQUIS_SMTP_URL</code>) to
            keep e-mails here.
          </p>
        </div>
      ) : error ? (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      ) : items === null ? (
        <p className="muted">Loading e-mails…</p>
      ) : items.length === 0 ? (
        <div className="card empty">
          <p>No e-mails yet.</p>
          <p className="muted">Welcome e-mails appear here when a tenant is ready.</p>
        </div>
      ) : (
        <ul className="mail-list">
          {items.map((mail) => (
            <li key={mail.id}>
              <article className="card mail" aria-labelledby={`mail-${mail.id}`}>
                <header className="mail-head">
                  <h2 id={`mail-${mail.id}`}>{mail.subject}</h2>
                  <RelativeTime iso={mail.created_at} />
                </header>
                <p className="mail-to">
                  To <strong>{mail.to}</strong>
                </p>
                <MailText text={mail.text} />
              </article>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** The plain-text body with its links clickable (never the HTML, so nothing runs). */
function MailText({ text }: { text: string }) {
  return (
    <div className="mail-text">
      {linkify(text).map((part, index) => {
        if (!part.url) return <span key={index}>{part.text}</span>;
        const url = new URL(part.url);
        return url.origin === window.location.origin ? (
          <Link key={index} to={url.pathname + url.search}>
            {part.text}
          </Link>
        ) : (
          <a key={index} href={part.url} target="_blank" rel="noopener noreferrer">
            {part.text}
          </a>
        );
      })}
    </div>
  );
}
