import type { TenantProgressEvent } from "../api";
import { progressText } from "../tenantList";

/** A tenant's current provisioning step ("2/4 · Running migrations") with a bar, live. */
export function TenantProgress({ progress }: { progress: TenantProgressEvent | undefined }) {
  if (!progress) return null;
  return (
    <div className="tenant-progress" data-step={progress.step} role="status">
      <progress max={100} value={progress.percent} aria-label="Provisioning progress" />
      <span className="tenant-progress-text">{progressText(progress)}</span>
    </div>
  );
}
