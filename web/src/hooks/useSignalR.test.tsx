import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fake } from "../test/fakeSignalR";
import { foreverRetryPolicy, RECONNECT_DELAYS_MS, restartDelay, useSignalR } from "./useSignalR";

vi.mock("@microsoft/signalr", async () => (await import("../test/fakeSignalR")).signalRModule());

const HUB = "/hubs/notifications";

/** Let resolved promises (start()) run their callbacks. */
async function settle(): Promise<void> {
  await act(async () => {
    await Promise.resolve();
    await Promise.resolve();
  });
}

beforeEach(() => fake.reset());
afterEach(() => vi.useRealTimers());

describe("useSignalR lifecycle", () => {
  it("builds the connection with the token factory and automatic reconnect, and starts on mount", async () => {
    const { result } = renderHook(() => useSignalR(HUB, "jwt-1"));
    expect(result.current.state).toBe("connecting");
    expect(fake.connections).toHaveLength(1);
    const connection = fake.last;
    expect(connection.url).toBe(HUB);
    expect(await connection.options.accessTokenFactory?.()).toBe("jwt-1");
    expect(fake.automaticReconnectCalls).toBe(1);
    expect(fake.statefulReconnectCalls).toBe(1);
    expect(connection.retryPolicy).toBe(foreverRetryPolicy);
    expect(connection.start).toHaveBeenCalledTimes(1);
    await settle();
    expect(result.current.state).toBe("connected");
  });

  it("stops the connection on unmount", async () => {
    const { unmount } = renderHook(() => useSignalR(HUB, "jwt-1"));
    await settle();
    const connection = fake.last;
    expect(connection.stop).not.toHaveBeenCalled();
    unmount();
    expect(connection.stop).toHaveBeenCalledTimes(1);
  });

  it("does not connect without a token", () => {
    const { result } = renderHook(() => useSignalR(HUB, null));
    expect(fake.connections).toHaveLength(0);
    expect(result.current.state).toBe("disconnected");
  });

  it("replaces the connection when the token changes, and stops it on logout", async () => {
    const { result, rerender } = renderHook(({ token }) => useSignalR(HUB, token), {
      initialProps: { token: "jwt-1" as string | null },
    });
    await settle();
    const first = fake.last;
    rerender({ token: "jwt-2" });
    expect(first.stop).toHaveBeenCalledTimes(1);
    expect(fake.connections).toHaveLength(2);
    expect(await fake.last.options.accessTokenFactory?.()).toBe("jwt-2");
    await settle();
    expect(result.current.state).toBe("connected");
    rerender({ token: null });
    expect(fake.last.stop).toHaveBeenCalledTimes(1);
    expect(result.current.state).toBe("disconnected");
  });

  it("goes connected -> reconnecting -> connected and tells reconnect listeners", async () => {
    const { result } = renderHook(() => useSignalR(HUB, "jwt-1"));
    await settle();
    const listener = vi.fn();
    act(() => {
      result.current.onReconnected(listener);
    });
    act(() => fake.last.dropped());
    expect(result.current.state).toBe("reconnecting");
    expect(listener).not.toHaveBeenCalled();
    act(() => fake.last.reconnected());
    expect(result.current.state).toBe("connected");
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it("stops telling a listener once it unsubscribes", async () => {
    const { result } = renderHook(() => useSignalR(HUB, "jwt-1"));
    await settle();
    const listener = vi.fn();
    let unsubscribe = () => undefined as void;
    act(() => {
      unsubscribe = result.current.onReconnected(listener);
    });
    unsubscribe();
    act(() => {
      fake.last.dropped();
      fake.last.reconnected();
    });
    expect(listener).not.toHaveBeenCalled();
  });

  it("retries a failed first start with backoff, without announcing a reconnect", async () => {
    vi.useFakeTimers();
    fake.failingStarts = 2;
    const { result } = renderHook(() => useSignalR(HUB, "jwt-1"));
    const connection = fake.last;
    const listener = vi.fn();
    act(() => {
      result.current.onReconnected(listener);
    });
    await settle();
    expect(result.current.state).toBe("disconnected");
    expect(connection.start).toHaveBeenCalledTimes(1);
    // Not before the first delay...
    await act(async () => {
      vi.advanceTimersByTime(restartDelay(0) - 1);
    });
    expect(connection.start).toHaveBeenCalledTimes(1);
    await act(async () => {
      vi.advanceTimersByTime(1);
    });
    await settle();
    expect(connection.start).toHaveBeenCalledTimes(2);
    expect(result.current.state).toBe("disconnected");
    // ...then a longer one, and the third attempt gets through.
    expect(restartDelay(1)).toBeGreaterThan(restartDelay(0));
    await act(async () => {
      vi.advanceTimersByTime(restartDelay(1));
    });
    await settle();
    expect(connection.start).toHaveBeenCalledTimes(3);
    expect(result.current.state).toBe("connected");
    // Pages load their data on mount; a first connection is not a "re"connect.
    expect(listener).not.toHaveBeenCalled();
  });

  it("starts again after the connection closes for good, and then announces the reconnect", async () => {
    vi.useFakeTimers();
    const { result } = renderHook(() => useSignalR(HUB, "jwt-1"));
    await settle();
    const connection = fake.last;
    const listener = vi.fn();
    act(() => {
      result.current.onReconnected(listener);
    });
    act(() => connection.closed());
    expect(result.current.state).toBe("reconnecting");
    expect(connection.start).toHaveBeenCalledTimes(1);
    await act(async () => {
      vi.advanceTimersByTime(restartDelay(0));
    });
    await settle();
    expect(connection.start).toHaveBeenCalledTimes(2);
    expect(result.current.state).toBe("connected");
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it("schedules nothing after unmount", async () => {
    vi.useFakeTimers();
    const { unmount } = renderHook(() => useSignalR(HUB, "jwt-1"));
    await settle();
    const connection = fake.last;
    unmount();
    act(() => connection.closed());
    await act(async () => {
      vi.advanceTimersByTime(60_000);
    });
    expect(connection.start).toHaveBeenCalledTimes(1);
  });
});

describe("useSignalR subscriptions", () => {
  it("delivers server messages to subscribers until they unsubscribe", async () => {
    const { result } = renderHook(() => useSignalR(HUB, "jwt-1"));
    await settle();
    const handler = vi.fn();
    let unsubscribe = () => undefined as void;
    act(() => {
      unsubscribe = result.current.on("ReceiveNotification", handler);
    });
    fake.last.serverSends("ReceiveNotification", "Success", "Tenant Acme is ready.");
    expect(handler).toHaveBeenCalledWith("Success", "Tenant Acme is ready.");
    unsubscribe();
    fake.last.serverSends("ReceiveNotification", "Error", "ignored");
    expect(handler).toHaveBeenCalledTimes(1);
  });

  it("keeps subscriptions made before the connection exists and across new connections", async () => {
    const { result, rerender } = renderHook(({ token }) => useSignalR(HUB, token), {
      initialProps: { token: null as string | null },
    });
    const handler = vi.fn();
    act(() => {
      result.current.on("TenantStatusChanged", handler);
    });
    rerender({ token: "jwt-1" });
    await settle();
    const event = { id: "t1", name: "Acme", status: "Active", last_error: null };
    fake.last.serverSends("TenantStatusChanged", event);
    rerender({ token: "jwt-2" });
    await settle();
    fake.last.serverSends("TenantStatusChanged", event);
    expect(handler).toHaveBeenCalledTimes(2);
    expect(handler).toHaveBeenCalledWith(event);
  });

  it("binds each method once per connection however many subscribers it has", async () => {
    const { result } = renderHook(() => useSignalR(HUB, "jwt-1"));
    await settle();
    const a = vi.fn();
    const b = vi.fn();
    act(() => {
      result.current.on("ReceiveNotification", a);
      result.current.on("ReceiveNotification", b);
    });
    expect(fake.last.handlers.get("receivenotification")).toHaveLength(1);
    fake.last.serverSends("ReceiveNotification", "Info", "hello");
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).toHaveBeenCalledTimes(1);
  });
});

describe("retry policy", () => {
  it("never gives up and never waits longer than the last delay", () => {
    const last = RECONNECT_DELAYS_MS[RECONNECT_DELAYS_MS.length - 1];
    for (const previousRetryCount of [0, 1, 2, 5, 50, 10_000]) {
      const delay = foreverRetryPolicy.nextRetryDelayInMilliseconds({
        previousRetryCount,
        elapsedMilliseconds: previousRetryCount * 1000,
        retryReason: new Error("lost"),
      });
      expect(delay).not.toBeNull();
      expect(delay).toBeLessThanOrEqual(last ?? 0);
    }
    expect(
      foreverRetryPolicy.nextRetryDelayInMilliseconds({
        previousRetryCount: 0,
        elapsedMilliseconds: 0,
        retryReason: new Error("lost"),
      }),
    ).toBe(0);
  });
});
