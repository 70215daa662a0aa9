// Security-facing behaviour of the public pages: login throttling, password rules, logout.
import { fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { ApiError, retryAfterSeconds } from "./api";
import { SESSION_KEY } from "./auth";
import { loginErrorMessage } from "./pages/LoginPage";
import { PASSWORD_RULES } from "./pages/SetPasswordPage";

vi.mock("@microsoft/signalr", async () => (await import("./test/fakeSignalR")).signalRModule());

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
let routes: Record<string, (init?: RequestInit) => Reply>;
let requests: { key: string; init?: RequestInit }[];

beforeEach(() => {
  requests = [];
  routes = {};
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
        headers: { "Content-Type": "application/json", ...reply.headers },
      });
    }),
  );
});

afterEach(() => {
  window.localStorage.clear();
  vi.unstubAllGlobals();
});

describe("login throttling", () => {
  it("says how long to wait after too many attempts", async () => {
    routes["POST /api/auth/login"] = () => ({
      status: 429,
      body: { detail: "too many failed logins; try again in 8 s" },
      headers: { "Retry-After": "8" },
    });
    window.history.replaceState(null, "", "/login");
    render(<App />);
    fireEvent.change(await screen.findByLabelText("E-mail"), { target: { value: "a@b.io" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "whatever-1" } });
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByText("Too many attempts — try again in 8 s.")).toBeTruthy();
  });

  it("reads Retry-After as whole seconds only", () => {
    expect(retryAfterSeconds("12")).toBe(12);
    expect(retryAfterSeconds(null)).toBeNull();
    expect(retryAfterSeconds("Wed, 21 Oct 2015 07:28:00 GMT")).toBeNull();
    expect(loginErrorMessage(new ApiError(429, "x"))).toBe("Too many attempts — try again later.");
    expect(loginErrorMessage(new ApiError(401, "x"))).toBe("Wrong e-mail or password.");
  });
});

describe("the set-password form", () => {
  it("states every rule before anyone types, and keeps the link after a refusal", async () => {
    let attempts = 0;
    routes["POST /api/auth/set-password"] = () => {
      attempts += 1;
      return attempts === 1
        ? {
            status: 422,
            body: {
              detail: [{ loc: ["body", "password"], msg: "password is too easy to guess: This is a very common password" }],
            },
          }
        : { status: 204 };
    };
    window.history.replaceState(null, "", "/set-password?token=tok-1");
    render(<App />);
    await screen.findByRole("heading", { name: "Set your password" });
    const rules = document.getElementById("password-rules");
    expect(rules).not.toBeNull();
    for (const rule of PASSWORD_RULES) expect(rules?.textContent).toContain(rule);
    expect(rules?.textContent).toContain("At least 10 characters");
    expect(rules?.textContent).toContain("e-mail address");

    const fill = (value: string) => {
      fireEvent.change(screen.getByLabelText("New password"), { target: { value } });
      fireEvent.change(screen.getByLabelText("Repeat the password"), { target: { value } });
      fireEvent.click(screen.getByRole("button", { name: "Set password" }));
    };
    fill("qwerty12345");
    expect(await screen.findByText(/too easy to guess/)).toBeTruthy();
    fill("slough-paper-27!");
    expect(await screen.findByRole("heading", { name: "Your password is set" })).toBeTruthy();
    const bodies = requests
      .filter((r) => r.key === "POST /api/auth/set-password")
      .map((r) => JSON.parse(String(r.init?.body)) as { token: string });
    expect(bodies.map((b) => b.token)).toEqual(["tok-1", "tok-1"]);
  });
});

describe("logging out", () => {
  it("sends the token so the server revokes it", async () => {
    routes["GET /api/me"] = () => ({
      status: 200,
      body: { id: "u1", email: "admin@example.com", role: "SuperAdmin", tenant_id: null },
    });
    routes["GET /api/notifications"] = () => ({ status: 200, body: { items: [], unread: 0 } });
    routes["POST /api/auth/logout"] = () => ({ status: 204 });
    window.localStorage.setItem(SESSION_KEY, JSON.stringify({ token: "jwt-9", expiresAt: Date.now() + 3600_000 }));
    window.history.replaceState(null, "", "/");
    render(<App />);
    fireEvent.click(await screen.findByRole("button", { name: /log out/i }));
    await vi.waitFor(() => expect(requests.some((r) => r.key === "POST /api/auth/logout")).toBe(true));
    const logout = requests.find((r) => r.key === "POST /api/auth/logout");
    expect((logout?.init?.headers as Record<string, string>).Authorization).toBe("Bearer jwt-9");
  });
});
