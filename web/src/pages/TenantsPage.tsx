import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import type { ApiError, Tenant, TenantProgressEvent, TenantStatus, TenantStatusEvent } from "../api";
import { useAuth } from "../auth";
import { Field } from "../components/Field";
import { StatusBadge } from "../components/StatusBadge";
import { TenantProgress } from "../components/TenantProgress";
import { ErrorSummary, pickFields, requireFields, useFocusFirstError } from "../forms";
import { useHubEvent, useReconnected } from "../realtime";
import { Link, navigate, useLocation } from "../router";
import { RelativeTime } from "../time";
import {
  addStarted,
  applyProgressEvent,
  applyStatusEvent,
  dropProgressOnStatus,
  mergePage,
  type ProgressById,
} from "../tenantList";
import { useToasts } from "../toasts";

export const STARTED_MESSAGE = "Tenant creation started. You will be notified when complete.";
const PAGE_SIZE = 25;
export const STATUSES: TenantStatus[] = ["Pending", "Provisioning", "Active", "Failed"];

/** The list's search and status filter, kept in the address (so a link can carry them). */
function useFilter(): [{ q: string; status: TenantStatus | "" }, (q: string, status: string) => void] {
  const { search } = useLocation();
  const params = new URLSearchParams(search);
  const raw = params.get("status") ?? "";
  const status = (STATUSES as string[]).includes(raw) ? (raw as TenantStatus) : "";
  return [{ q: params.get("q") ?? "", status }, applyFilter];
}

function applyFilter(q: string, status: string): void {
  const query = new URLSearchParams();
  if (q) query.set("q", q);
  if (status) query.set("status", status);
  const text = query.toString();
  navigate(text ? `/tenants?${text}` : "/tenants", { replace: true });
}

export function TenantsPage() {
  const { api } = useAuth();
  const { show } = useToasts();
  const [tenants, setTenantsState] = useState<Tenant[]>([]);
  // The list as of the latest update, so live events apply in order even between renders.
  const listRef = useRef<Tenant[]>([]);
  const setTenants = useCallback((update: (current: Tenant[]) => Tenant[]) => {
    listRef.current = update(listRef.current);
    setTenantsState(listRef.current);
  }, []);
  const [total, setTotal] = useState(0);
  const [offset, setOffset] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [retrying, setRetrying] = useState<Set<string>>(new Set());
  const [filter, setFilter] = useFilter();
  const [typed, setTyped] = useState(filter.q);
  const filtered = Boolean(filter.q || filter.status);
  // Typing searches after a short pause, not on every key.
  useEffect(() => {
    if (typed === filter.q) return undefined;
    const timer = setTimeout(() => setFilter(typed.trim(), filter.status), 300);
    return () => clearTimeout(timer);
  }, [typed, filter.q, filter.status, setFilter]);
  // Tenants created from this page that the list may not have caught up with yet.
  const justCreated = useRef(new Set<string>());

  const refresh = useCallback(() => {
    api.tenants(PAGE_SIZE, offset, { q: filter.q, status: filter.status }).then(
      (page) => {
        setTenants((current) =>
          filtered
            ? page.items
            : mergePage(current, page.items, offset === 0 ? justCreated.current : new Set()),
        );
        setTotal(page.total);
        setLoaded(true);
        setLoadError(null);
      },
      (e: ApiError) => {
        setLoadError(e.message);
        setLoaded(true);
      },
    );
  }, [api, offset, setTenants, filter.q, filter.status, filtered]);

  useEffect(refresh, [refresh]);
  useReconnected(refresh);

  const [progress, setProgress] = useState<ProgressById>({});
  useHubEvent("TenantProgress", (event: TenantProgressEvent) => {
    setProgress((current) => applyProgressEvent(current, event));
  });

  useHubEvent("TenantStatusChanged", (event: TenantStatusEvent) => {
    setProgress((current) => dropProgressOnStatus(current, event.id, event.status));
    const result = applyStatusEvent(listRef.current, event);
    if (filtered) refresh(); // the tenant may enter or leave the filtered list
    else if (result.known) setTenants(() => result.tenants);
    else if (offset === 0) refresh(); // a tenant this page has not seen yet
    setRetrying((current) => {
      if (!current.has(event.id)) return current;
      const next = new Set(current);
      next.delete(event.id);
      return next;
    });
  });

  const retry = async (tenant: Tenant) => {
    setRetrying((current) => new Set(current).add(tenant.id));
    try {
      await api.retryTenant(tenant.id);
      show("Info", `Retrying provisioning of ${tenant.name}.`);
    } catch (e) {
      const err = e as ApiError;
      show(err.status === 409 ? "Info" : "Error", err.status === 409 ? `${tenant.name}: provisioning is already running.` : err.message);
      setRetrying((current) => {
        const next = new Set(current);
        next.delete(tenant.id);
        return next;
      });
      refresh();
    }
  };

  const remove = async (tenant: Tenant) => {
    const sure = window.confirm(
      `Delete tenant ${tenant.name}? Its database is dropped too (only if this installation made it). This cannot be undone.`,
    );
    if (!sure) return;
    try {
      await api.deleteTenant(tenant.id);
      setTenants((current) => current.filter((t) => t.id !== tenant.id));
      setTotal((value) => Math.max(0, value - 1));
      show("Info", `Tenant ${tenant.name} was deleted.`);
    } catch (e) {
      const err = e as ApiError;
      show(
        err.status === 409 ? "Info" : "Error",
        err.status === 409 ? `${tenant.name}: wait until its provisioning job stops.` : err.message,
      );
      refresh();
    }
  };

  const onCreated = (tenant: Tenant) => {
    justCreated.current.add(tenant.id);
    setTotal((value) => value + 1);
    setTenants((current) => (current.some((t) => t.id === tenant.id) ? current : [tenant, ...current]));
  };

  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const pageNumber = Math.floor(offset / PAGE_SIZE) + 1;
  return (
    <div className="stack">
      <div className="page-head">
        <div>
          <h1>Tenants</h1>
          <p className="muted">
            Every organisation on the platform and its provisioning status, live.
          </p>
        </div>
      </div>

      <div className="layout-two">
        <CreateTenantForm onCreated={onCreated} />

        <section className="card" aria-labelledby="tenant-list-title">
          <div className="card-head">
            <h2 id="tenant-list-title">
              {filtered ? "Matching tenants" : "All tenants"} <span className="count">{total}</span>
            </h2>
            <button type="button" className="button button-ghost button-small" onClick={refresh}>
              Refresh
            </button>
          </div>
          <form className="filters" role="search" aria-label="Tenants" onSubmit={(e) => e.preventDefault()}>
            <div className="field">
              <label htmlFor="tenant-search">Search</label>
              <input
                id="tenant-search"
                type="search"
                placeholder="Name, address or admin e-mail"
                value={typed}
                onChange={(e) => {
                  setTyped(e.target.value);
                  setOffset(0);
                }}
              />
            </div>
            <div className="field">
              <label htmlFor="tenant-status">Status</label>
              <select
                id="tenant-status"
                value={filter.status}
                onChange={(e) => {
                  setOffset(0);
                  setFilter(typed.trim(), e.target.value);
                }}
              >
                <option value="">Any status</option>
                {STATUSES.map((status) => (
                  <option key={status} value={status}>
                    {status}
                  </option>
                ))}
              </select>
            </div>
          </form>
          {loadError && (
            <p className="notice notice-error" role="alert">
              {loadError}
            </p>
          )}
          {!loaded ? (
            <p className="muted">Loading tenants…</p>
          ) : tenants.length === 0 && filtered ? (
            <div className="empty">
              <p>No tenant matches.</p>
              <button
                type="button"
                className="button button-secondary button-small"
                onClick={() => {
                  setTyped("");
                  setFilter("", "");
                }}
              >
                Clear the filter
              </button>
            </div>
          ) : tenants.length === 0 ? (
            <div className="empty">
              <p>No tenants yet.</p>
              <p className="muted">Create the first one with the form; its status will update here live.</p>
            </div>
          ) : (
            <table className="tenants">
              <thead>
                <tr>
                  <th scope="col">Tenant</th>
                  <th scope="col">Admin</th>
                  <th scope="col">Status</th>
                  <th scope="col">Updated</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tenants.map((tenant) => (
                  <tr key={tenant.id} data-tenant={tenant.name} data-status={tenant.status}>
                    <td data-label="Tenant">
                      <div>
                        <Link to={`/tenants/${tenant.id}`} className="tenant-name">
                          {tenant.name}
                        </Link>
                        {tenant.slug && <span className="tenant-slug">{tenant.slug}</span>}
                      </div>
                    </td>
                    <td data-label="Admin" className="tenant-admin">
                      {tenant.admin_email}
                    </td>
                    <td data-label="Status">
                      <StatusBadge status={tenant.status} />
                      <TenantProgress progress={progress[tenant.id]} />
                      {tenant.stuck && (
                        <p className="reason" data-stuck="true">
                          Stuck: provisioning is taking far longer than it should.
                        </p>
                      )}
                      {tenant.status === "Failed" && tenant.last_error && (
                        <p className="reason">{tenant.last_error}</p>
                      )}
                    </td>
                    <td data-label="Updated">
                      <RelativeTime iso={tenant.updated_at} />
                    </td>
                    <td className="actions">
                      {(tenant.status === "Failed" || tenant.stuck) && (
                        <button
                          type="button"
                          className="button button-secondary button-small"
                          onClick={() => void retry(tenant)}
                          disabled={retrying.has(tenant.id)}
                          aria-label={`Retry provisioning of ${tenant.name}`}
                        >
                          {retrying.has(tenant.id) ? "Retrying…" : "Retry"}
                        </button>
                      )}
                      {tenant.status !== "Pending" && tenant.status !== "Provisioning" && (
                        <button
                          type="button"
                          className="button button-ghost button-small"
                          onClick={() => void remove(tenant)}
                          aria-label={`Delete tenant ${tenant.name}`}
                        >
                          Delete
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {pages > 1 && (
            <nav className="pager" aria-label="Tenant pages">
              <button
                type="button"
                className="button button-ghost button-small"
                disabled={offset === 0}
                onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}
              >
                Previous
              </button>
              <span>
                Page {pageNumber} of {pages}
              </span>
              <button
                type="button"
                className="button button-ghost button-small"
                disabled={pageNumber >= pages}
                onClick={() => setOffset(offset + PAGE_SIZE)}
              >
                Next
              </button>
            </nav>
          )}
        </section>
      </div>
    </div>
  );
}

function CreateTenantForm({ onCreated }: { onCreated: (tenant: Tenant) => void }) {
  const { api } = useAuth();
  const [name, setName] = useState("");
  const [adminEmail, setAdminEmail] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [started, setStarted] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const nameInput = useRef<HTMLInputElement>(null);
  const [attempt, setAttempt] = useState(0);
  const form = useRef<HTMLFormElement>(null);
  const summary = useRef<HTMLDivElement>(null);
  useFocusFirstError(form, summary, attempt);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setError(null);
    setStarted(null);
    const missing = requireFields({ name, admin_email: adminEmail }, ["admin_email"]);
    setErrors(missing);
    if (Object.keys(missing).length) {
      setAttempt((n) => n + 1);
      return;
    }
    setBusy(true);
    try {
      const email = adminEmail.trim();
      const response = await api.createTenant(name.trim(), email);
      const [row] = addStarted([], response, email);
      if (row) onCreated(row);
      setStarted(STARTED_MESSAGE);
      setName("");
      setAdminEmail("");
      nameInput.current?.focus();
    } catch (e) {
      const err = e as ApiError;
      const fields = pickFields(err.fields, ["name", "admin_email"]);
      if (err.status === 422 && Object.keys(fields).length) setErrors(fields);
      else setError(err.message);
      setAttempt((n) => n + 1);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="create-tenant-title">
      <h2 id="create-tenant-title">New tenant</h2>
      <p className="muted">
        Provisioning runs in the background: its own database, migrations, seed data and a
        welcome e-mail to the admin.
      </p>
      <p role="status" className={started ? "notice notice-success" : "visually-hidden"}>
        {started}
      </p>
      <ErrorSummary
        ref={summary}
        errors={errors}
        error={error}
        labels={{ name: "Tenant name", admin_email: "Admin e-mail" }}
      />
      <form ref={form} onSubmit={(e) => void submit(e)} className="form" noValidate>
        <Field
          ref={nameInput}
          label="Tenant name"
          name="name"
          required
          maxLength={60}
          value={name}
          onChange={(e) => setName(e.target.value)}
          error={errors.name}
          hint={"Up to 60 letters, digits, spaces and . & ' -"}
        />
        <Field
          label="Admin e-mail"
          type="email"
          name="admin_email"
          required
          value={adminEmail}
          onChange={(e) => setAdminEmail(e.target.value)}
          error={errors.admin_email}
          hint="They get a welcome e-mail with a link to set their password."
        />
        <button type="submit" className="button button-primary" aria-busy={busy}>
          {busy ? "Creating…" : "Create tenant"}
        </button>
      </form>
    </section>
  );
}
