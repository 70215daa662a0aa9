import { useRef, useState, type FormEvent } from "react";
import type { ApiError } from "../api";
import { useAuth } from "../auth";
import { Field } from "../components/Field";
import { checkNewPassword, PasswordRules } from "../components/PasswordRules";
import { ErrorSummary, pickFields, requireFields, useFocusFirstError, type FieldErrors } from "../forms";

const LABELS = {
  current_password: "Current password",
  new_password: "New password",
  confirm: "Repeat the new password",
};

/** The signed-in user's account: who they are, and a password change. */
export function AccountPage() {
  const { api, user } = useAuth();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const form = useRef<HTMLFormElement>(null);
  const summary = useRef<HTMLDivElement>(null);
  useFocusFirstError(form, summary, attempt);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setError(null);
    setSaved(false);
    const problems = {
      ...requireFields({ current_password: current }),
      ...checkNewPassword(next, confirm, { password: "new_password", confirm: "confirm" }),
    };
    setErrors(problems);
    if (Object.keys(problems).length) {
      setAttempt((n) => n + 1);
      return;
    }
    setBusy(true);
    try {
      await api.changePassword(current, next);
      setSaved(true);
      setCurrent("");
      setNext("");
      setConfirm("");
    } catch (e) {
      const err = e as ApiError;
      const fields = pickFields(err.fields, ["current_password", "new_password"]);
      if (Object.keys(fields).length) setErrors(fields);
      else setError(err.message);
      setAttempt((n) => n + 1);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="stack narrow">
      <div className="page-head">
        <div>
          <h1>Your account</h1>
          <p className="muted">Signed in as {user?.email}.</p>
        </div>
      </div>
      <section className="card" aria-labelledby="change-password-title">
        <h2 id="change-password-title">Change password</h2>
        <PasswordRules id="password-rules" email={user?.email} />
        <p role="status" className={saved ? "notice notice-success" : "visually-hidden"}>
          {saved ? "Your password is changed. Use the new one next time you log in." : ""}
        </p>
        <ErrorSummary ref={summary} errors={errors} error={error} labels={LABELS} />
        <form ref={form} onSubmit={(e) => void submit(e)} className="form" noValidate>
          <Field
            label={LABELS.current_password}
            type="password"
            name="current_password"
            autoComplete="current-password"
            required
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
            error={errors.current_password}
          />
          <Field
            label={LABELS.new_password}
            type="password"
            name="new_password"
            autoComplete="new-password"
            required
            value={next}
            onChange={(e) => setNext(e.target.value)}
            error={errors.new_password}
          />
          <Field
            label={LABELS.confirm}
            type="password"
            name="confirm"
            autoComplete="new-password"
            required
            value={confirm}
            onChange={(e) => setConfirm(e.target.value)}
            error={errors.confirm}
          />
          <button type="submit" className="button button-primary" aria-busy={busy}>
            {busy ? "Saving…" : "Change password"}
          </button>
        </form>
      </section>
    </div>
  );
}
