import { useRef, useState, type FormEvent } from "react";
import { ApiError, publicApi } from "../api";
import { Field } from "../components/Field";
import { ErrorSummary, pickFields, requireFields, useFocusFirstError } from "../forms";
import { Link } from "../router";

export function SignupPage() {
  const [organization, setOrganization] = useState("");
  const [email, setEmail] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const form = useRef<HTMLFormElement>(null);
  const summary = useRef<HTMLDivElement>(null);
  useFocusFirstError(form, summary, attempt);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setError(null);
    const missing = requireFields({ organization, email }, ["email"]);
    setErrors(missing);
    if (Object.keys(missing).length) {
      setAttempt((n) => n + 1);
      return;
    }
    setBusy(true);
    try {
      await publicApi.signup(organization.trim(), email.trim());
      setDone(true);
    } catch (e) {
      const err = e as ApiError;
      const fields = pickFields(err.fields, ["organization", "email"]);
      if (err.status === 422 && Object.keys(fields).length) setErrors(fields);
      else setError(err.message);
      setAttempt((n) => n + 1);
    } finally {
      setBusy(false);
    }
  };

  if (done) {
    return (
      <div className="done" role="status">
        <div className="done-icon" aria-hidden="true">
          ✉
        </div>
        <h1>Check your e-mail</h1>
        <p className="lede">
          We are setting up <strong>{organization.trim()}</strong>. When it is ready, we will send{" "}
          <strong>{email.trim()}</strong> a link to set your password.
        </p>
        <p className="public-alt">
          <Link to="/login">Back to log in</Link>
        </p>
      </div>
    );
  }

  return (
    <>
      <h1>Create your workspace</h1>
      <p className="lede">Your organisation gets its own database, ready in moments.</p>
      <ErrorSummary
        ref={summary}
        errors={errors}
        error={error}
        labels={{ organization: "Organisation name", email: "Your work e-mail" }}
      />
      <form ref={form} onSubmit={(e) => void submit(e)} className="form" noValidate>
        <Field
          label="Organisation name"
          name="organization"
          autoComplete="organization"
          required
          maxLength={60}
          value={organization}
          onChange={(e) => setOrganization(e.target.value)}
          error={errors.organization}
          hint={"Up to 60 letters, digits, spaces and . & ' -"}
          autoFocus
        />
        <Field
          label="Your work e-mail"
          type="email"
          name="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={errors.email}
        />
        <button type="submit" className="button button-primary button-block" aria-busy={busy}>
          {busy ? "Signing up…" : "Sign up"}
        </button>
      </form>
      <p className="public-alt">
        Already have an account? <Link to="/login">Log in</Link>
      </p>
    </>
  );
}
