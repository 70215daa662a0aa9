// The session: the access token (kept in localStorage so a reload keeps you logged in)
// and the user it belongs to.
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useState,
  type ReactNode,
} from "react";
import { createClient, publicApi, setUnauthorizedHandler, type ApiClient, type Me } from "./api";

export const SESSION_KEY = "diquis.session";

interface StoredSession {
  token: string;
  expiresAt: number;
}

export function readStoredSession(now = Date.now()): StoredSession | null {
  try {
    const raw = window.localStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Partial<StoredSession>;
    if (typeof parsed.token !== "string" || typeof parsed.expiresAt !== "number") return null;
    return parsed.expiresAt > now ? { token: parsed.token, expiresAt: parsed.expiresAt } : null;
  } catch {
    return null;
  }
}

function storeSession(session: StoredSession | null): void {
  try {
    if (session) window.localStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else window.localStorage.removeItem(SESSION_KEY);
  } catch {
    // Storage can be unavailable (private mode); the session then lasts until a reload.
  }
}

export type AuthStatus = "loading" | "anonymous" | "authenticated";

export interface Auth {
  status: AuthStatus;
  token: string | null;
  user: Me | null;
  api: ApiClient;
  /** Why the last session ended on its own (expired, revoked), to show on the login page. */
  notice: string | null;
  login: (email: string, password: string) => Promise<Me>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<StoredSession | null>(() => readStoredSession());
  const [user, setUser] = useState<Me | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const token = session?.token ?? null;
  const api = useMemo(() => createClient(token), [token]);

  const endSession = useCallback((why: string | null) => {
    storeSession(null);
    setSession(null);
    setUser(null);
    setNotice(why);
  }, []);

  // A 401 on any call means the token is no longer good.
  useEffect(() => {
    setUnauthorizedHandler(() => endSession("Your session has ended. Please log in again."));
    return () => setUnauthorizedHandler(null);
  }, [endSession]);

  // Who is this token? Fetched on load (reload keeps the session) and after login.
  useEffect(() => {
    if (!token) return undefined;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = () => {
      api.me(controller.signal).then(setUser, (error: unknown) => {
        // 401 ends the session (see above); anything else (server restarting) is retried.
        const status = (error as { status?: number }).status;
        if (!controller.signal.aborted && status !== 401) timer = setTimeout(load, 3000);
      });
    };
    load();
    return () => {
      controller.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [api, token]);

  // End the session when the token expires, rather than failing calls one by one.
  useEffect(() => {
    if (!session) return undefined;
    const timer = setTimeout(
      () => endSession("Your session has expired. Please log in again."),
      Math.max(0, Math.min(session.expiresAt - Date.now(), 2 ** 31 - 1)),
    );
    return () => clearTimeout(timer);
  }, [session, endSession]);

  // Logging in or out in one tab does the same in the others.
  useEffect(() => {
    const onStorage = (event: StorageEvent) => {
      if (event.key !== SESSION_KEY) return;
      const next = readStoredSession();
      setSession(next);
      if (!next) setUser(null);
    };
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }, []);

  const login = useCallback(async (email: string, password: string) => {
    const response = await publicApi.login(email, password);
    const next = {
      token: response.access_token,
      expiresAt: Date.now() + response.expires_in * 1000,
    };
    const me = await createClient(next.token).me();
    storeSession(next);
    setNotice(null);
    setUser(me);
    setSession(next);
    return me;
  }, []);

  const logout = useCallback(async () => {
    const ending = token;
    endSession(null);
    // Revokes the token and clears the dashboard's cookie; it is forgotten here either way.
    await publicApi.logout(ending).catch(() => undefined);
  }, [endSession, token]);

  const status: AuthStatus = !token ? "anonymous" : user ? "authenticated" : "loading";
  const value = useMemo<Auth>(
    () => ({ status, token, user, api, notice, login, logout }),
    [status, token, user, api, notice, login, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth must be used inside <AuthProvider>");
  return auth;
}
