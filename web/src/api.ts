// The HTTP API of `diquis serve`: typed calls, and errors whose messages a person can read.

export type Role = "SuperAdmin" | "Admin";
export type TenantStatus = "Pending" | "Provisioning" | "Active" | "Failed";
export type NotificationType = "Success" | "Error" | "Info" | "Warning";

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
}

export interface Me {
  id: string;
  email: string | null;
  role: Role;
  tenant_id: string | null;
}

export interface Tenant {
  id: string;
  name: string;
  slug: string;
  status: TenantStatus;
  last_error: string | null;
  admin_email: string;
  job_id: string | null;
  created_at: string;
  updated_at: string;
  /** Provisioning for longer than the server's DIQUIS_PROVISIONING_STUCK_AFTER. */
  stuck?: boolean;
}

export interface TenantPage {
  items: Tenant[];
  total: number;
}

export interface TenantStarted {
  id: string;
  name: string;
  status: TenantStatus;
  job_id: string;
}

/** The payload of the hub's `TenantStatusChanged` event. */
export interface TenantStatusEvent {
  id: string;
  name: string;
  status: TenantStatus;
  last_error: string | null;
}

/** The payload of the hub's `TenantProgress` event: a provisioning step, live. */
export interface TenantProgressEvent {
  id: string;
  step: number;
  steps: number;
  label: string;
  percent: number;
}

export interface StoredNotification {
  id: number;
  type: NotificationType;
  message: string;
  created_at: string;
  read_at: string | null;
  /** The app page it is about (a tenant's), if any. */
  link?: string | null;
}

/** Whom a set-password link is for (POST /api/auth/password-token). */
export interface PasswordTokenInfo {
  email: string;
  organization: string | null;
  purpose: "welcome" | "reset";
}

export interface TenantFilter {
  q?: string;
  status?: TenantStatus | "";
}

export interface Inbox {
  items: StoredNotification[];
  unread: number;
}

export interface MailItem {
  id: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  created_at: string;
}

/** A failed API call: the status, a sentence for people, and per-field messages (422). */
export class ApiError extends Error {
  readonly status: number;
  readonly fields: Record<string, string>;
  /** Seconds to wait before trying again (the Retry-After header of a 429), if given. */
  retryAfter: number | null = null;

  constructor(status: number, message: string, fields: Record<string, string> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
  }
}

/** The whole seconds of a Retry-After header (null when absent or a date). */
export function retryAfterSeconds(header: string | null): number | null {
  if (!header || !/^\d+$/.test(header.trim())) return null;
  return Number(header.trim());
}

interface ValidationItem {
  loc?: unknown[];
  msg?: string;
}

/** Turn `{"detail": ...}` (a string or FastAPI's 422 list) into an ApiError. */
export function errorFromBody(status: number, body: unknown): ApiError {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (typeof detail === "string" && detail) {
    return new ApiError(status, capitalize(detail));
  }
  if (Array.isArray(detail)) {
    const fields: Record<string, string> = {};
    const sentences: string[] = [];
    for (const item of detail as ValidationItem[]) {
      const loc = Array.isArray(item.loc) ? item.loc : [];
      const field = loc.length > 1 ? String(loc[loc.length - 1]) : "";
      const msg = item.msg ?? "is invalid";
      if (field && !(field in fields)) fields[field] = capitalize(msg);
      sentences.push(field ? `${humanize(field)}: ${msg}` : msg);
    }
    return new ApiError(status, sentences.join("; ") || fallbackMessage(status), fields);
  }
  return new ApiError(status, fallbackMessage(status));
}

function fallbackMessage(status: number): string {
  if (status === 401) return "Please log in again.";
  if (status === 403) return "You are not allowed to do that.";
  if (status === 404) return "Not found.";
  if (status === 429) return "Too many attempts. Please try again later.";
  if (status >= 500) return "The server had a problem. Please try again.";
  return `Request failed (${status}).`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function humanize(field: string): string {
  return capitalize(field.replace(/_/g, " "));
}

export interface ApiOptions {
  method?: "GET" | "POST" | "DELETE";
  body?: unknown;
  token?: string | null;
  signal?: AbortSignal;
}

/** Called with every 401 on an authenticated call, so the app can end a stale session. */
let unauthorizedHandler: (() => void) | null = null;

export function setUnauthorizedHandler(handler: (() => void) | null): void {
  unauthorizedHandler = handler;
}

/** Call the API; resolves with the JSON body (undefined for 204), rejects with ApiError. */
export async function apiFetch<T>(path: string, options: ApiOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await fetch(path, {
      method: options.method ?? "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (error) {
    if ((error as { name?: string }).name === "AbortError") throw error;
    throw new ApiError(0, "Cannot reach the server. Check your connection and try again.");
  }
  if (response.status === 204) return undefined as T;
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && options.token) unauthorizedHandler?.();
    const error = errorFromBody(response.status, body);
    error.retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
    throw error;
  }
  return body as T;
}

/** The API calls the pages make, each with the session's token. */
export function createClient(token: string | null) {
  const call = <T,>(path: string, options: Omit<ApiOptions, "token"> = {}) =>
    apiFetch<T>(path, { ...options, token });
  return {
    me: (signal?: AbortSignal) => call<Me>("/api/me", { signal }),
    tenants: (limit: number, offset: number, filter: TenantFilter = {}, signal?: AbortSignal) => {
      const params = new URLSearchParams({ limit: String(limit), offset: String(offset) });
      if (filter.q?.trim()) params.set("q", filter.q.trim());
      if (filter.status) params.set("status", filter.status);
      return call<TenantPage>(`/api/tenants?${params.toString()}`, { signal });
    },
    tenant: (id: string, signal?: AbortSignal) =>
      call<Tenant>(`/api/tenants/${encodeURIComponent(id)}`, { signal }),
    createTenant: (name: string, adminEmail: string) =>
      call<TenantStarted>("/api/tenants", {
        method: "POST",
        body: { name, admin_email: adminEmail },
      }),
    retryTenant: (id: string) =>
      call<Tenant>(`/api/tenants/${encodeURIComponent(id)}/retry`, { method: "POST" }),
    resendWelcome: (id: string) =>
      call<{ message: string }>(`/api/tenants/${encodeURIComponent(id)}/resend-welcome`, {
        method: "POST",
      }),
    changePassword: (currentPassword: string, newPassword: string) =>
      call<void>("/api/auth/change-password", {
        method: "POST",
        body: { current_password: currentPassword, new_password: newPassword },
      }),
    deleteTenant: (id: string) =>
      call<void>(`/api/tenants/${encodeURIComponent(id)}`, { method: "DELETE" }),
    inbox: (signal?: AbortSignal) => call<Inbox>("/api/notifications", { signal }),
    markRead: (id: number) =>
      call<void>(`/api/notifications/${id}/read`, { method: "POST" }),
    mailbox: (signal?: AbortSignal) => call<{ items: MailItem[] }>("/api/dev/mailbox", { signal }),
  };
}

export type ApiClient = ReturnType<typeof createClient>;

/** Public calls: no session needed. */
export const publicApi = {
  login: (email: string, password: string) =>
    apiFetch<TokenResponse>("/api/auth/login", { method: "POST", body: { email, password } }),
  /** Revokes the token (and the session cookie's) on the server. */
  logout: (token?: string | null) => apiFetch<void>("/api/auth/logout", { method: "POST", token }),
  signup: (organization: string, email: string) =>
    apiFetch<{ message: string }>("/api/signup", { method: "POST", body: { organization, email } }),
  setPassword: (token: string, password: string) =>
    apiFetch<void>("/api/auth/set-password", { method: "POST", body: { token, password } }),
  /** Whom a set-password link is for; the token goes in a POST body, never in a GET. */
  passwordToken: (token: string) =>
    apiFetch<PasswordTokenInfo>("/api/auth/password-token", { method: "POST", body: { token } }),
  forgotPassword: (email: string) =>
    apiFetch<{ message: string }>("/api/auth/forgot-password", { method: "POST", body: { email } }),
};
