import { describe, expect, it } from "vitest";
import { errorFromBody, type Tenant } from "./api";
import { formatRelative, linkify, parseTimestamp } from "./format";
import { safeNext } from "./pages/LoginPage";
import {
  addStarted,
  applyProgressEvent,
  applyStatusEvent,
  dropProgressOnStatus,
  mergePage,
  progressText,
} from "./tenantList";

const tenant = (id: string, status: Tenant["status"] = "Pending"): Tenant => ({
  id,
  name: id.toUpperCase(),
  slug: id,
  status,
  last_error: null,
  admin_email: `${id}@example.com`,
  job_id: `job-${id}`,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
});

describe("tenant list updates", () => {
  it("applies a status event to the tenant it names only", () => {
    const list = [tenant("a"), tenant("b")];
    const { tenants, known } = applyStatusEvent(list, {
      id: "b",
      name: "B",
      status: "Failed",
      last_error: "seed failed (OSError)",
    });
    expect(known).toBe(true);
    expect(tenants[0]).toBe(list[0]);
    expect(tenants[1]?.status).toBe("Failed");
    expect(tenants[1]?.last_error).toBe("seed failed (OSError)");
  });

  it("reports an event for a tenant it has not seen", () => {
    const list = [tenant("a")];
    const result = applyStatusEvent(list, { id: "z", name: "Z", status: "Active", last_error: null });
    expect(result.known).toBe(false);
    expect(result.tenants).toBe(list);
  });

  it("adds a started tenant on top but never downgrades one live events already brought", () => {
    const started = { id: "c", name: "C", status: "Pending" as const, job_id: "job-c" };
    const added = addStarted([tenant("a")], started, "c@example.com");
    expect(added.map((t) => t.id)).toEqual(["c", "a"]);
    expect(added[0]?.admin_email).toBe("c@example.com");
    const live = [tenant("c", "Provisioning")];
    expect(addStarted(live, started, "c@example.com")).toBe(live);
  });

  it("keeps just-created rows a fresh page does not include yet", () => {
    const merged = mergePage([tenant("new"), tenant("old")], [tenant("old", "Active")], new Set(["new"]));
    expect(merged.map((t) => `${t.id}:${t.status}`)).toEqual(["new:Pending", "old:Active"]);
    const caughtUp = mergePage([tenant("new")], [tenant("new", "Active")], new Set(["new"]));
    expect(caughtUp.map((t) => `${t.id}:${t.status}`)).toEqual(["new:Active"]);
  });
});

describe("API errors", () => {
  it("reads a string detail", () => {
    const error = errorFromBody(409, { detail: "tenant 'Acme' is Processing, not Failed" });
    expect(error.status).toBe(409);
    expect(error.message).toBe("Tenant 'Acme' is Processing, not Failed");
  });

  it("maps FastAPI's 422 list to fields and a sentence", () => {
    const error = errorFromBody(422, {
      detail: [
        { loc: ["body", "name"], msg: "is taken already", type: "value_error" },
        { loc: ["body", "admin_email"], msg: "is not a valid e-mail address", type: "value_error" },
      ],
    });
    expect(error.fields).toEqual({ name: "Is taken already", admin_email: "Is not a valid e-mail address" });
    expect(error.message).toBe("Name: is taken already; Admin email: is not a valid e-mail address");
  });

  it("falls back to a readable message", () => {
    expect(errorFromBody(429, null).message).toMatch(/too many/i);
    expect(errorFromBody(500, "<html>").message).toMatch(/server had a problem/i);
  });
});

describe("display helpers", () => {
  it("linkifies URLs in plain text without trailing punctuation", () => {
    const parts = linkify("Set your password: http://127.0.0.1:8000/set-password?token=abc-_1.\nBye");
    expect(parts).toEqual([
      { text: "Set your password: " },
      { text: "http://127.0.0.1:8000/set-password?token=abc-_1", url: "http://127.0.0.1:8000/set-password?token=abc-_1" },
      { text: ".\nBye" },
    ]);
    expect(linkify("no links")).toEqual([{ text: "no links" }]);
  });

  it("treats zone-less timestamps as UTC and formats recent ones relatively", () => {
    expect(parseTimestamp("2026-01-01T10:00:00").toISOString()).toBe("2026-01-01T10:00:00.000Z");
    const now = new Date("2026-01-01T10:10:00Z");
    expect(formatRelative("2026-01-01T10:09:50Z", now)).toBe("just now");
    expect(formatRelative("2026-01-01T10:05:00+00:00", now)).toBe("5 min ago");
    expect(formatRelative("2026-01-01T07:10:00Z", now)).toBe("3 h ago");
  });

  it("only follows a local `next` after login", () => {
    expect(safeNext("?next=%2Fmailbox")).toBe("/mailbox");
    expect(safeNext("?next=https%3A%2F%2Fevil.test")).toBe("/");
    expect(safeNext("?next=%2F%2Fevil.test")).toBe("/");
    expect(safeNext("")).toBe("/");
  });
});

describe("tenant provisioning progress", () => {
  const step = (id: string, n: number, label: string, percent: number) => ({
    id,
    step: n,
    steps: 4,
    label,
    percent,
  });

  it("keeps each tenant's latest step and forgets it when the job is done", () => {
    let progress = applyProgressEvent({}, step("a", 1, "Creating the database", 0));
    progress = applyProgressEvent(progress, step("b", 3, "Seeding", 50));
    progress = applyProgressEvent(progress, step("a", 2, "Running migrations", 25));
    expect(progressText(progress.a!)).toBe("2/4 · Running migrations");
    expect(progress.b?.percent).toBe(50);
    // an older step arriving late never goes back
    expect(applyProgressEvent(progress, step("a", 1, "Creating the database", 0))).toBe(progress);
    const done = applyProgressEvent(progress, step("a", 4, "Ready", 100));
    expect(done.a).toBeUndefined();
    expect(done.b).toBe(progress.b);
  });

  it("shows the e-mail step next to Active, and drops the step when provisioning fails", () => {
    const progress = applyProgressEvent({}, step("a", 4, "Sending welcome e-mail", 75));
    expect(dropProgressOnStatus(progress, "a", "Active")).toBe(progress);
    expect(dropProgressOnStatus(progress, "a", "Failed").a).toBeUndefined();
  });
});
