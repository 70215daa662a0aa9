import { useState, type FormEvent } from "react";
import { ApiError, publicApi } from "../api";
import { Field } from "../components/Field";
import { Link } from "../router";

export function SignupPage() {
  const [organization, setOrganization] = useState("");
  const [email, setEmail] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setErrors({});
    try {
      await publicApi.signup(organization.trim(), email.trim());
      setDone(true);
    } catch (e) {
      const err = e as ApiError;
      if (err.status === 422 && Object.keys(err.fields).length) setErrors(err.fields);
      else setError(err.message);
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
      {error && (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} className="form" noValidate>
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
        <button type="submit" className="button button-primary button-block" disabled={busy}>
          {busy ? "Signing up…" : "Sign up"}
        </button>
      </form>
      <p className="public-alt">
        Already have an account? <Link to="/login">Log in</Link>
      </p>
    </>
  );
}
