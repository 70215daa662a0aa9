// How the tenants list changes with live events and API answers (pure, so it is testable).
import type { Tenant, TenantProgressEvent, TenantStatus, TenantStarted, TenantStatusEvent } from "./api";

/** The latest provisioning step of each tenant, by id. */
export type ProgressById = Record<string, TenantProgressEvent>;

/**
 * Apply a `TenantProgress` event: the tenant's latest step (an older step never replaces a
 * newer one), and none once the job is done (100%).
 */
export function applyProgressEvent(progress: ProgressById, event: TenantProgressEvent): ProgressById {
  const { [event.id]: previous, ...others } = progress;
  if (event.percent >= 100) return others;
  if (previous && previous.step > event.step) return progress;
  return { ...others, [event.id]: event };
}

/** Forget a tenant's step once its status says provisioning stopped (it failed, or was reset). */
export function dropProgressOnStatus(progress: ProgressById, id: string, status: TenantStatus): ProgressById {
  if (status !== "Failed" && status !== "Pending") return progress;
  if (!(id in progress)) return progress;
  const { [id]: _dropped, ...others } = progress;
  return others;
}

/** "2/4 · Running migrations" */
export function progressText(event: TenantProgressEvent): string {
  return `${event.step}/${event.steps} · ${event.label}`;
}

/**
 * Apply a `TenantStatusChanged` event. `known` is false when the tenant is not in the list
 * (created elsewhere, or the event beat the API's answer): the caller re-fetches the list.
 */
export function applyStatusEvent(
  tenants: Tenant[],
  event: TenantStatusEvent,
): { tenants: Tenant[]; known: boolean } {
  let known = false;
  const next = tenants.map((tenant) => {
    if (tenant.id !== event.id) return tenant;
    known = true;
    return {
      ...tenant,
      name: event.name || tenant.name,
      status: event.status,
      last_error: event.last_error,
      updated_at: new Date().toISOString(),
      stuck: false, // a status change is progress; the next fetch says if it is stuck again
    };
  });
  return { tenants: known ? next : tenants, known };
}

/** Add a just-created tenant at the top, unless live events already brought it in. */
export function addStarted(tenants: Tenant[], started: TenantStarted, adminEmail: string): Tenant[] {
  if (tenants.some((tenant) => tenant.id === started.id)) return tenants;
  const now = new Date().toISOString();
  const row: Tenant = {
    id: started.id,
    name: started.name,
    slug: "",
    status: started.status,
    last_error: null,
    admin_email: adminEmail,
    job_id: started.job_id,
    created_at: now,
    updated_at: now,
  };
  return [row, ...tenants];
}

/** Take a fresh page from the server, keeping rows it does not know yet (still committing). */
export function mergePage(current: Tenant[], page: Tenant[], pending: Set<string>): Tenant[] {
  const fresh = new Set(page.map((tenant) => tenant.id));
  const keep = current.filter((tenant) => pending.has(tenant.id) && !fresh.has(tenant.id));
  return [...keep, ...page];
}
