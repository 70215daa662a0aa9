import { useCallback, useEffect, useState } from "react";
import type { ApiError, Tenant, TenantProgressEvent, TenantStatus, TenantStatusEvent } from "../api";
import { useAuth } from "../auth";
import { StatusBadge } from "../components/StatusBadge";
import { TenantProgress } from "../components/TenantProgress";
import { applyProgressEvent, dropProgressOnStatus, type ProgressById } from "../tenantList";
import { LocalTime } from "../time";
import { useHubEvent, useReconnected } from "../realtime";

const EXPLANATION: Record<TenantStatus, string> = {
  Pending: "Your workspace is queued for setup. This page updates by itself.",
  Provisioning: "We are setting up your workspace now. This page updates by itself.",
  Active: "Your workspace is ready.",
  Failed: "Setting up your workspace hit a problem. It will be tried again automatically.",
};

/** A tenant Admin's home: their organisation and its status, live. */
export function HomePage() {
  const { api, user } = useAuth();
  const tenantId = user?.tenant_id ?? null;
  const [tenant, setTenant] = useState<Tenant | null>(null);
  const [error, setError] = useState<string | null>(null);

  const refresh = useCallback(() => {
    if (!tenantId) return;
    api.tenant(tenantId).then(
      (next) => {
        setTenant(next);
        setError(null);
      },
      (e: ApiError) => setError(e.message),
    );
  }, [api, tenantId]);

  useEffect(refresh, [refresh]);
  useReconnected(refresh);
  const [progress, setProgress] = useState<ProgressById>({});
  useHubEvent("TenantProgress", (event: TenantProgressEvent) => {
    if (event.id === tenantId) setProgress((current) => applyProgressEvent(current, event));
  });
  useHubEvent("TenantStatusChanged", (event: TenantStatusEvent) => {
    if (event.id !== tenantId) return;
    setProgress((current) => dropProgressOnStatus(current, event.id, event.status));
    setTenant((current) =>
      current ? { ...current, status: event.status, last_error: event.last_error, name: event.name } : current,
    );
  });

  if (!tenantId) {
    return (
      <div className="card">
        <h1>Welcome</h1>
        <p className="muted">Your account is not attached to an organisation.</p>
      </div>
    );
  }

  return (
    <div className="stack">
      <div className="page-head">
        <div>
          <p className="eyebrow">Your organisation</p>
          <h1>{tenant?.name ?? "Loading…"}</h1>
        </div>
        {tenant && <StatusBadge status={tenant.status} />}
      </div>
      {error && (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      )}
      {tenant && (
        <div className="layout-two">
          <section className="card" aria-labelledby="status-title">
            <h2 id="status-title">Status</h2>
            <p className={`status-line status-${tenant.status.toLowerCase()}`}>{EXPLANATION[tenant.status]}</p>
            <TenantProgress progress={progress[tenant.id]} />
            {tenant.status === "Failed" && tenant.last_error && <p className="reason">{tenant.last_error}</p>}
          </section>
          <section className="card" aria-labelledby="details-title">
            <h2 id="details-title">Details</h2>
            <dl className="details">
              <dt>Workspace address</dt>
              <dd>
                <code>{tenant.slug}</code>
              </dd>
              <dt>Administrator</dt>
              <dd>{tenant.admin_email}</dd>
              <dt>Created</dt>
              <dd>
                <LocalTime iso={tenant.created_at} />
              </dd>
              <dt>Signed in as</dt>
              <dd>{user?.email}</dd>
            </dl>
          </section>
        </div>
      )}
    </div>
  );
}
