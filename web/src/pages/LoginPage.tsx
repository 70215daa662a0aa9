import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError } from "../api";
import { useAuth } from "../auth";
import { Field } from "../components/Field";
import { Link, navigate, useLocation } from "../router";

/** Where to go after logging in: the page that sent you here, if it is one of ours. */
export function safeNext(search: string): string {
  const next = new URLSearchParams(search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login")
    ? next
    : "/";
}

/** What the login form says about a refused attempt. */
export function loginErrorMessage(err: ApiError): string {
  if (err.status === 401) return "Wrong e-mail or password.";
  if (err.status === 429) {
    return err.retryAfter
      ? `Too many attempts — try again in ${err.retryAfter} s.`
      : "Too many attempts — try again later.";
  }
  return err.message;
}

export function LoginPage() {
  const { login, notice, status } = useAuth();
  const { search } = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errorRef = useRef<HTMLParagraphElement>(null);

  useEffect(() => {
    if (status === "authenticated") navigate(safeNext(search), { replace: true });
  }, [status, search]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email.trim(), password);
      navigate(safeNext(search), { replace: true });
    } catch (e) {
      const err = e as ApiError;
      setError(loginErrorMessage(err));
      setBusy(false);
      setTimeout(() => errorRef.current?.focus(), 0);
    }
  };

  return (
    <>
      <h1>Log in</h1>
      <p className="lede">Manage your tenants and follow their provisioning live.</p>
      {notice && !error && <p className="notice notice-info">{notice}</p>}
      {error && (
        <p className="notice notice-error" role="alert" tabIndex={-1} ref={errorRef}>
          {error}
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} className="form" noValidate>
        <Field
          label="E-mail"
          type="email"
          name="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          autoFocus
        />
        <Field
          label="Password"
          type="password"
          name="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <button type="submit" className="button button-primary button-block" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
      <p className="public-alt">
        New here? <Link to="/signup">Create a workspace</Link>
      </p>
    </>
  );
}
