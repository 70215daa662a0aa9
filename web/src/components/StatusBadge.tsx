import type { TenantStatus } from "../api";

/** A tenant's provisioning status as a coloured pill (the dot pulses while work is under way). */
export function StatusBadge({ status }: { status: TenantStatus }) {
  return (
    <span className={`badge badge-${status.toLowerCase()}`} data-status={status}>
      <span className="badge-dot" aria-hidden="true" />
      {status}
    </span>
  );
}
