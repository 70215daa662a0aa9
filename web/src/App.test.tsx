// The app wired to a fake hub and a fake API: live updates, toasts and re-fetch on reconnect.
import { act, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { SESSION_KEY } from "./auth";
import { fake } from "./test/fakeSignalR";

vi.mock("@microsoft/signalr", async () => (await import("./test/fakeSignalR")).signalRModule());

const TENANT = {
  id: "t1",
  name: "Acme",
  slug: "acme",
  status: "Pending",
  last_error: null,
  admin_email: "boss@acme.test",
  job_id: "j1",
  created_at: "2026-01-01T10:00:00+00:00",
  updated_at: "2026-01-01T10:00:00+00:00",
};

type Route = (init: RequestInit | undefined) => { status: number; body?: unknown };

function json(status: number, body?: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

let routes: Record<string, Route>;
let calls: string[];

beforeEach(() => {
  fake.reset();
  calls = [];
  routes = {
    "GET /api/me": () => ({
      status: 200,
      body: { id: "u1", email: "admin@example.com", role: "SuperAdmin", tenant_id: null },
    }),
    "GET /api/tenants?limit=25&offset=0": () => ({ status: 200, body: { items: [TENANT], total: 1 } }),
    "GET /api/notifications": () => ({ status: 200, body: { items: [], unread: 0 } }),
  };
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init?: RequestInit) => {
      const key = `${init?.method ?? "GET"} ${url}`;
      calls.push(key);
      const route = routes[key];
      if (!route) return json(404, { detail: `no route ${key}` });
      const { status, body } = route(init);
      return status === 204 ? new Response(null, { status }) : json(status, body);
    }),
  );
  window.localStorage.setItem(
    SESSION_KEY,
    JSON.stringify({ token: "jwt-1", expiresAt: Date.now() + 3600_000 }),
  );
  window.history.replaceState(null, "", "/tenants");
});

afterEach(() => {
  window.localStorage.clear();
  vi.unstubAllGlobals();
});

const count = (key: string) => calls.filter((call) => call === key).length;

async function renderTenantsPage() {
  render(<App />);
  await screen.findByRole("heading", { name: "Tenants" });
  await screen.findByText("Acme");
  await waitFor(() => expect(screen.getByText("Live")).toBeTruthy());
}

describe("the app with a live hub", () => {
  it("keeps the session across a reload and connects with its token", async () => {
    await renderTenantsPage();
    expect(await fake.last.options.accessTokenFactory?.()).toBe("jwt-1");
    expect(screen.getByText("admin@example.com")).toBeTruthy();
  });

  it("re-fetches the tenant list and the inbox after a reconnect", async () => {
    await renderTenantsPage();
    await waitFor(() => expect(count("GET /api/notifications")).toBe(1));
    const tenantsBefore = count("GET /api/tenants?limit=25&offset=0");
    routes["GET /api/tenants?limit=25&offset=0"] = () => ({
      status: 200,
      body: { items: [{ ...TENANT, status: "Active" }], total: 1 },
    });
    routes["GET /api/notifications"] = () => ({
      status: 200,
      body: {
        items: [
          { id: 7, type: "Success", message: "Tenant Acme is ready.", created_at: TENANT.created_at, read_at: null },
        ],
        unread: 1,
      },
    });

    act(() => fake.last.dropped());
    expect(screen.getByText("Reconnecting…")).toBeTruthy();
    act(() => fake.last.reconnected());

    await waitFor(() => expect(count("GET /api/notifications")).toBe(2));
    expect(count("GET /api/tenants?limit=25&offset=0")).toBe(tenantsBefore + 1);
    // What was missed while offline is now on screen.
    await waitFor(() => expect(screen.getByRole("button", { name: "Notifications, 1 unread" })).toBeTruthy());
    const row = document.querySelector('tr[data-tenant="Acme"]');
    expect(row?.getAttribute("data-status")).toBe("Active");
  });

  it("updates the status badge from TenantStatusChanged without fetching", async () => {
    await renderTenantsPage();
    const before = calls.length;
    act(() =>
      fake.last.serverSends("TenantStatusChanged", {
        id: "t1",
        name: "Acme",
        status: "Failed",
        last_error: "migrate failed: injected fault in step migrate",
      }),
    );
    const row = document.querySelector('tr[data-tenant="Acme"]') as HTMLElement;
    expect(row.getAttribute("data-status")).toBe("Failed");
    expect(within(row).getByText("migrate failed: injected fault in step migrate")).toBeTruthy();
    expect(within(row).getByRole("button", { name: "Retry provisioning of Acme" })).toBeTruthy();
    expect(calls.length).toBe(before);
  });

  it("shows the provisioning step from TenantProgress, live, until the job is done", async () => {
    await renderTenantsPage();
    const before = calls.length;
    const send = (step: number, label: string, percent: number) =>
      act(() => fake.last.serverSends("TenantProgress", { id: "t1", step, steps: 4, label, percent }));
    send(2, "Running migrations", 25);
    const row = document.querySelector('tr[data-tenant="Acme"]') as HTMLElement;
    expect(within(row).getByText("2/4 · Running migrations")).toBeTruthy();
    send(4, "Sending welcome e-mail", 75);
    expect(within(row).getByText("4/4 · Sending welcome e-mail")).toBeTruthy();
    expect(within(row).getByRole("status").querySelector("progress")?.getAttribute("value")).toBe("75");
    send(4, "Ready", 100);
    expect(within(row).queryByText(/4\/4/)).toBeNull();
    expect(calls.length).toBe(before);
  });

  it("flags a stuck tenant and offers a retry", async () => {
    routes["GET /api/tenants?limit=25&offset=0"] = () => ({
      status: 200,
      body: { items: [{ ...TENANT, status: "Provisioning", stuck: true }], total: 1 },
    });
    await renderTenantsPage();
    const row = document.querySelector('tr[data-tenant="Acme"]') as HTMLElement;
    expect(within(row).getByText(/Stuck: provisioning is taking far longer/)).toBeTruthy();
    expect(within(row).getByRole("button", { name: "Retry provisioning of Acme" })).toBeTruthy();
  });

  it("deletes a failed tenant after confirmation", async () => {
    routes["GET /api/tenants?limit=25&offset=0"] = () => ({
      status: 200,
      body: { items: [{ ...TENANT, status: "Failed", last_error: "not ours" }], total: 1 },
    });
    routes["DELETE /api/tenants/t1"] = () => ({ status: 204 });
    const confirm = vi.fn(() => false);
    vi.stubGlobal("confirm", confirm);
    await renderTenantsPage();
    const button = screen.getByRole("button", { name: "Delete tenant Acme" });
    act(() => button.click());
    expect(confirm).toHaveBeenCalledOnce();
    expect(count("DELETE /api/tenants/t1")).toBe(0); // said no: nothing happens
    confirm.mockReturnValue(true);
    act(() => button.click());
    await waitFor(() => expect(document.querySelector('tr[data-tenant="Acme"]')).toBeNull());
    expect(count("DELETE /api/tenants/t1")).toBe(1);
  });

  it("shows ReceiveNotification as a toast in a live region and refreshes the bell", async () => {
    await renderTenantsPage();
    routes["GET /api/notifications"] = () => ({
      status: 200,
      body: {
        items: [
          { id: 8, type: "Error", message: "Provisioning failed: Acme", created_at: TENANT.created_at, read_at: null },
        ],
        unread: 1,
      },
    });
    act(() => fake.last.serverSends("ReceiveNotification", "Success", "Tenant Acme is ready."));
    act(() => fake.last.serverSends("ReceiveNotification", "Error", "Provisioning failed: Acme"));
    const success = screen.getByText("Tenant Acme is ready.").closest(".toast");
    expect(success?.getAttribute("data-type")).toBe("Success");
    expect(success?.classList.contains("toast-success")).toBe(true);
    expect(success?.closest('[role="status"]')?.getAttribute("aria-live")).toBe("polite");
    const error = screen.getAllByText("Provisioning failed: Acme")[0]?.closest(".toast");
    expect(error?.classList.contains("toast-error")).toBe(true);
    expect(error?.closest('[role="alert"]')).toBeTruthy();
    await waitFor(() => expect(screen.getByRole("button", { name: "Notifications, 1 unread" })).toBeTruthy());
  });

  it("ends the session when the API says the token is no longer valid", async () => {
    routes["GET /api/me"] = () => ({ status: 401, body: { detail: "invalid token" } });
    render(<App />);
    await screen.findByRole("heading", { name: "Log in" });
    expect(window.location.pathname).toBe("/login");
    expect(window.localStorage.getItem(SESSION_KEY)).toBeNull();
    expect(fake.connections.every((connection) => connection.stop.mock.calls.length > 0)).toBe(true);
  });
});
