import { useCallback, useEffect, useState } from "react";
import type { ApiError, Tenant, TenantStatusEvent } from "../api";
import { useAuth } from "../auth";
import { StatusBadge } from "../components/StatusBadge";
import { useHubEvent, useReconnected } from "../realtime";
import { Link } from "../router";
import { useToasts } from "../toasts";
import { LocalTime, RelativeTime } from "../time";

/** The jobs dashboard's page of a job (the dashboard lives under /hangfire). */
export function jobUrl(jobId: string): string {
  return `/hangfire/jobs/${encodeURIComponent(jobId)}`;
}

/** One tenant for a super admin: status live, its provisioning job, welcome e-mail again. */
export function TenantPage({ id }: { id: string }) {
  const { api } = useAuth();
  const { show } = useToasts();
  const [tenant, setTenant] = useState<Tenant | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const refresh = useCallback(() => {
    api.tenant(id).then(
      (next) => {
        setTenant(next);
        setError(null);
      },
      (e: ApiError) => setError(e.status === 404 ? "There is no such tenant (it may have been deleted)." : e.message),
    );
  }, [api, id]);

  useEffect(refresh, [refresh]);
  useReconnected(refresh);
  useHubEvent("TenantStatusChanged", (event: TenantStatusEvent) => {
    if (event.id === id) refresh();
  });

  const resend = async () => {
    if (!tenant || busy) return;
    setBusy(true);
    try {
      await api.resendWelcome(tenant.id);
      show("Success", `A new welcome e-mail is on its way to ${tenant.admin_email}. Older links no longer work.`);
    } catch (e) {
      show("Error", (e as ApiError).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="stack">
      <p className="breadcrumb">
        <Link to="/tenants">← All tenants</Link>
      </p>
      {error && (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      )}
      {!tenant && !error && (
        <p className="muted" role="status">
          Loading the tenant…
        </p>
      )}
      {tenant && (
        <>
          <div className="page-head">
            <div>
              <p className="eyebrow">Tenant</p>
              <h1>{tenant.name}</h1>
            </div>
            <StatusBadge status={tenant.status} />
          </div>
          <div className="layout-two">
            <section className="card" aria-labelledby="tenant-details-title">
              <h2 id="tenant-details-title">Details</h2>
              <dl className="details">
                <dt>Address</dt>
                <dd>
                  <code>{tenant.slug}</code>
                </dd>
                <dt>Admin</dt>
                <dd>{tenant.admin_email}</dd>
                <dt>Created</dt>
                <dd>
                  <LocalTime iso={tenant.created_at} />
                </dd>
                <dt>Updated</dt>
                <dd>
                  <RelativeTime iso={tenant.updated_at} />
                </dd>
                {tenant.last_error && (
                  <>
                    <dt>Last error</dt>
                    <dd className="reason">{tenant.last_error}</dd>
                  </>
                )}
              </dl>
            </section>
            <section className="card" aria-labelledby="tenant-actions-title">
              <h2 id="tenant-actions-title">Provisioning</h2>
              {tenant.job_id ? (
                <p>
                  <a href={jobUrl(tenant.job_id)} className="job-link">
                    Job #{tenant.job_id} in the jobs dashboard
                  </a>
                </p>
              ) : (
                <p className="muted">No provisioning job yet.</p>
              )}
              {tenant.status === "Active" && (
                <>
                  <p className="muted">
                    Lost the welcome e-mail? Send a new one: its link replaces every older one.
                  </p>
                  <button
                    type="button"
                    className="button button-secondary"
                    aria-busy={busy}
                    onClick={() => void resend()}
                  >
                    Resend welcome e-mail
                  </button>
                </>
              )}
            </section>
          </div>
        </>
      )}
    </div>
  );
}
