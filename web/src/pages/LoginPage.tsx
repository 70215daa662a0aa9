import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError } from "../api";
import { useAuth } from "../auth";
import { Field } from "../components/Field";
import { ErrorSummary, requireFields, useFocusFirstError, type FieldErrors } from "../forms";
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
  const [errors, setErrors] = useState<FieldErrors>({});
  const [attempt, setAttempt] = useState(0);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  const summary = useRef<HTMLDivElement>(null);
  useFocusFirstError(form, summary, attempt);

  useEffect(() => {
    if (status === "authenticated") navigate(safeNext(search), { replace: true });
  }, [status, search]);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    const missing = requireFields({ email, password }, ["email"]);
    setErrors(missing);
    setError(null);
    if (Object.keys(missing).length) {
      setAttempt((n) => n + 1);
      return;
    }
    setBusy(true);
    try {
      await login(email.trim(), password);
      navigate(safeNext(search), { replace: true });
    } catch (e) {
      const err = e as ApiError;
      setError(loginErrorMessage(err));
      setBusy(false);
      setAttempt((n) => n + 1);
    }
  };

  return (
    <>
      <h1>Log in</h1>
      <p className="lede">Manage your tenants and follow their provisioning live.</p>
      {notice && !error && <p className="notice notice-info">{notice}</p>}
      <ErrorSummary ref={summary} errors={errors} error={error} labels={{ email: "E-mail", password: "Password" }} />
      <form ref={form} onSubmit={(e) => void submit(e)} className="form" noValidate>
        <Field
          label="E-mail"
          type="email"
          name="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={errors.email}
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
          error={errors.password}
        />
        <p className="form-aside">
          <Link to="/forgot-password">Forgot password?</Link>
        </p>
        <button type="submit" className="button button-primary button-block" aria-busy={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
      <p className="public-alt">
        New here? <Link to="/signup">Create a workspace</Link>
      </p>
    </>
  );
}
