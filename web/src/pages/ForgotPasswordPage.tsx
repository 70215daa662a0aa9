import { useRef, useState, type FormEvent } from "react";
import { ApiError, publicApi } from "../api";
import { Field } from "../components/Field";
import { ErrorSummary, pickFields, requireFields, useFocusFirstError, type FieldErrors } from "../forms";
import { Link, useLocation } from "../router";

/** "Forgot password?": one e-mail field; the same answer whether the address is known or not. */
export function ForgotPasswordPage() {
  const { search } = useLocation();
  const [email, setEmail] = useState(() => new URLSearchParams(search).get("email") ?? "");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const form = useRef<HTMLFormElement>(null);
  const summary = useRef<HTMLDivElement>(null);
  useFocusFirstError(form, summary, attempt);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setError(null);
    const missing = requireFields({ email }, ["email"]);
    setErrors(missing);
    if (Object.keys(missing).length) {
      setAttempt((n) => n + 1);
      return;
    }
    setBusy(true);
    try {
      setAnswer((await publicApi.forgotPassword(email.trim())).message);
    } catch (e) {
      const err = e as ApiError;
      const fields = pickFields(err.fields, ["email"]);
      if (Object.keys(fields).length) setErrors(fields);
      else setError(err.message);
      setAttempt((n) => n + 1);
    } finally {
      setBusy(false);
    }
  };

  if (answer) {
    return (
      <div className="done" role="status">
        <div className="done-icon" aria-hidden="true">
          ✉
        </div>
        <h1>Check your e-mail</h1>
        <p className="lede">{answer}</p>
        <p className="public-alt">
          <Link to="/login">Back to log in</Link>
        </p>
      </div>
    );
  }

  return (
    <>
      <h1>Forgot your password?</h1>
      <p className="lede">Enter your account's e-mail address and we will send you a link to choose a new one.</p>
      <ErrorSummary ref={summary} errors={errors} error={error} labels={{ email: "E-mail" }} />
      <form ref={form} onSubmit={(e) => void submit(e)} className="form" noValidate>
        <Field
          label="E-mail"
          type="email"
          name="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={errors.email}
          autoFocus
        />
        <button type="submit" className="button button-primary button-block" aria-busy={busy}>
          {busy ? "Sending…" : "Send me a link"}
        </button>
      </form>
      <p className="public-alt">
        Remembered it? <Link to="/login">Log in</Link>
      </p>
    </>
  );
}
