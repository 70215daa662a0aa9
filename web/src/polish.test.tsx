// Issue 15 in the browser's model: all field errors at once, focus, live regions, busy
// buttons, the set-password link's account and dead links, ticking times, pausing toasts.
import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { SESSION_KEY } from "./auth";
import { TOAST_DURATION, ToastProvider, useToasts } from "./toasts";
import { RelativeTime, TICK_MS } from "./time";
import { formatUtc } from "./format";

vi.mock("@microsoft/signalr", async () => (await import("./test/fakeSignalR")).signalRModule());

type Reply = { status: number; body?: unknown };
let routes: Record<string, (init?: RequestInit) => Reply>;
let requests: { key: string; init?: RequestInit }[];

beforeEach(() => {
  routes = {};
  requests = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init?: RequestInit) => {
      const key = `${init?.method ?? "GET"} ${url}`;
      requests.push({ key, init });
      const route = routes[key];
      const reply = route ? route(init) : { status: 404, body: { detail: `no route ${key}` } };
      if (reply.status === 204) return new Response(null, { status: 204 });
      return new Response(JSON.stringify(reply.body ?? null), {
        status: reply.status,
        headers: { "Content-Type": "application/json" },
      });
    }),
  );
});

afterEach(() => {
  window.localStorage.clear();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("sign-up errors", () => {
  it("shows every field error at once, announces them and focuses the first field", async () => {
    routes["POST /api/signup"] = () => ({
      status: 422,
      body: {
        detail: [
          { loc: ["body", "organization"], msg: "must not be empty" },
          { loc: ["body", "email"], msg: "is not a valid e-mail address" },
        ],
      },
    });
    window.history.replaceState(null, "", "/signup");
    render(<App />);
    const org = await screen.findByLabelText("Organisation name");
    fireEvent.change(org, { target: { value: "??" } });
    fireEvent.change(screen.getByLabelText("Your work e-mail"), { target: { value: "a@b.io" } });
    const button = screen.getByRole("button", { name: "Sign up" });
    fireEvent.click(button);
    expect(button.hasAttribute("disabled")).toBe(false);
    await screen.findByText("Please fix these 2 fields:");
    const summary = screen.getAllByRole("alert").find((el) => el.textContent?.includes("fix these"));
    expect(summary?.getAttribute("aria-live")).toBe("assertive");
    expect(summary?.textContent).toContain("Organisation name: Must not be empty");
    expect(summary?.textContent).toContain("Your work e-mail: Is not a valid e-mail address");
    await waitFor(() => expect(document.activeElement).toBe(org));
    expect(org.getAttribute("aria-invalid")).toBe("true");
  });

  it("checks empty fields before sending, all together", async () => {
    window.history.replaceState(null, "", "/signup");
    render(<App />);
    fireEvent.click(await screen.findByRole("button", { name: "Sign up" }));
    await screen.findByText("Please fix these 2 fields:");
    expect(requests.filter((r) => r.key === "POST /api/signup")).toHaveLength(0);
  });

  it("marks the button busy, not disabled, while the request runs", async () => {
    let release: (reply: Reply) => void = () => undefined;
    routes["POST /api/auth/login"] = () => ({ status: 401, body: { detail: "x" } });
    vi.stubGlobal(
      "fetch",
      vi.fn(
        () =>
          new Promise<Response>((resolve) => {
            release = (reply) => resolve(new Response(JSON.stringify(reply.body), { status: reply.status }));
          }),
      ),
    );
    window.history.replaceState(null, "", "/login");
    render(<App />);
    fireEvent.change(await screen.findByLabelText("E-mail"), { target: { value: "a@b.io" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "whatever-1" } });
    const button = screen.getByRole("button", { name: "Log in" });
    button.focus();
    fireEvent.click(button);
    const busy = await screen.findByRole("button", { name: "Logging in…" });
    expect(busy.getAttribute("aria-busy")).toBe("true");
    expect(busy.hasAttribute("disabled")).toBe(false);
    expect(document.activeElement).toBe(busy);
    await act(async () => release({ status: 401, body: { detail: "wrong" } }));
    expect(await screen.findByText("Wrong e-mail or password.")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Forgot password?" }).getAttribute("href")).toBe("/forgot-password");
  });
});

describe("set-password links", () => {
  it("says which account the link is for, asking with a POST", async () => {
    routes["POST /api/auth/password-token"] = () => ({
      status: 200,
      body: { email: "peter@initech.test", organization: "Initech", purpose: "reset" },
    });
    window.history.replaceState(null, "", "/set-password?token=tok-7");
    render(<App />);
    await screen.findByRole("heading", { name: "Choose a new password" });
    expect(screen.getByTestId("account-for").textContent).toBe("For peter@initech.test at Initech.");
    expect(screen.getByTestId("personal-words").textContent).toContain("“peter”");
    const asked = requests.find((r) => r.key === "POST /api/auth/password-token");
    expect(JSON.parse(String(asked?.init?.body))).toEqual({ token: "tok-7" });
    expect(requests.some((r) => r.key.startsWith("GET") && r.key.includes("tok-7"))).toBe(false);
  });

  it("tells the holder of a used link what to do next", async () => {
    routes["POST /api/auth/password-token"] = () => ({
      status: 422,
      body: { detail: [{ loc: ["body", "token"], msg: "has been used already" }] },
    });
    window.history.replaceState(null, "", "/set-password?token=old");
    render(<App />);
    await screen.findByRole("heading", { name: "This link has been used" });
    expect(screen.getByRole("link", { name: "Log in" }).getAttribute("href")).toBe("/login");
    expect(screen.getByRole("link", { name: "Get a new link" }).getAttribute("href")).toBe("/forgot-password");
  });

  it("asks for a reset link and shows the same answer for any address", async () => {
    routes["POST /api/auth/forgot-password"] = () => ({ status: 202, body: { message: "If an account uses that address…" } });
    window.history.replaceState(null, "", "/forgot-password");
    render(<App />);
    fireEvent.change(await screen.findByLabelText("E-mail"), { target: { value: "x@y.io" } });
    fireEvent.click(screen.getByRole("button", { name: "Send me a link" }));
    expect(await screen.findByText("If an account uses that address…")).toBeTruthy();
  });
});

describe("times", () => {
  it("tick by themselves and show UTC in the tooltip", () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-03-01T12:00:00Z"));
    render(<RelativeTime iso="2026-03-01T12:00:00+00:00" />);
    const time = document.querySelector("time");
    expect(time?.textContent).toBe("just now");
    expect(time?.getAttribute("title")).toBe("2026-03-01 12:00:00 UTC");
    act(() => vi.advanceTimersByTime(3 * TICK_MS + 1000));
    expect(time?.textContent).toBe("1 min ago");
    expect(TICK_MS).toBeGreaterThanOrEqual(15_000);
    expect(TICK_MS).toBeLessThanOrEqual(30_000);
    expect(formatUtc("2026-03-01T12:00:00")).toBe("2026-03-01 12:00:00 UTC");
  });
});

describe("toasts", () => {
  function Shower() {
    const { show } = useToasts();
    return (
      <button type="button" onClick={() => show("Success", "Tenant Acme is ready.")}>
        show
      </button>
    );
  }

  it("pause while pointed at or focused, then time out", () => {
    vi.useFakeTimers();
    render(
      <ToastProvider>
        <Shower />
      </ToastProvider>,
    );
    fireEvent.click(screen.getByText("show"));
    const toast = document.querySelector(".toast") as HTMLElement;
    fireEvent.mouseEnter(toast);
    act(() => vi.advanceTimersByTime(TOAST_DURATION.Success * 3));
    expect(document.querySelector(".toast")).not.toBeNull();
    fireEvent.mouseLeave(toast);
    fireEvent.focus(screen.getByRole("button", { name: "Dismiss notification" }));
    act(() => vi.advanceTimersByTime(TOAST_DURATION.Success * 3));
    expect(document.querySelector(".toast")?.getAttribute("data-paused")).toBe("true");
    fireEvent.blur(screen.getByRole("button", { name: "Dismiss notification" }));
    act(() => vi.advanceTimersByTime(TOAST_DURATION.Success + 10));
    expect(document.querySelector(".toast")).toBeNull();
  });
});

describe("the tenants list", () => {
  it("searches and filters through the API, keeping the filter in the address", async () => {
    routes["GET /api/me"] = () => ({
      status: 200,
      body: { id: "u1", email: "admin@example.com", role: "SuperAdmin", tenant_id: null },
    });
    routes["GET /api/notifications"] = () => ({
      status: 200,
      body: {
        items: [
          { id: 1, type: "Success", message: "Tenant Acme is ready.", created_at: "2026-01-01T10:00:00+00:00", read_at: null, link: "/tenants/t1" },
        ],
        unread: 1,
      },
    });
    const page = { status: 200, body: { items: [], total: 0 } };
    routes["GET /api/tenants?limit=25&offset=0"] = () => page;
    routes["GET /api/tenants?limit=25&offset=0&status=Failed"] = () => page;
    routes["GET /api/tenants?limit=25&offset=0&q=acme&status=Failed"] = () => page;
    window.localStorage.setItem(SESSION_KEY, JSON.stringify({ token: "jwt-1", expiresAt: Date.now() + 3600_000 }));
    window.history.replaceState(null, "", "/tenants");
    render(<App />);
    fireEvent.change(await screen.findByLabelText("Status"), { target: { value: "Failed" } });
    await waitFor(() => expect(window.location.search).toBe("?status=Failed"));
    fireEvent.change(screen.getByLabelText("Search"), { target: { value: "acme" } });
    await waitFor(() =>
      expect(requests.some((r) => r.key === "GET /api/tenants?limit=25&offset=0&q=acme&status=Failed")).toBe(true),
    );
    expect(window.location.search).toBe("?q=acme&status=Failed");
    fireEvent.click(await screen.findByRole("button", { name: "Notifications, 1 unread" }));
    const link = await screen.findByRole("link", { name: "View tenant" });
    expect(link.getAttribute("href")).toBe("/tenants/t1");
  });
});
