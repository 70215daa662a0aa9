import { useState, type FormEvent } from "react";
import { ApiError, publicApi } from "../api";
import { useAuth } from "../auth";
import { Field } from "../components/Field";
import { Link, navigate, useLocation } from "../router";

export const MIN_PASSWORD_LENGTH = 10;

/** Every rule the server checks (identity/passwords.py), said before anyone types. */
export const PASSWORD_RULES = [
  `At least ${MIN_PASSWORD_LENGTH} characters long (at most 256).`,
  "Hard to guess: not a common password, a single word, a name, a date, a keyboard pattern (qwerty) or a sequence (abcdef, 12345).",
  "Not built from your e-mail address or your organisation's name.",
];

export function SetPasswordPage() {
  const { search } = useLocation();
  const { status, logout } = useAuth();
  const token = new URLSearchParams(search).get("token") ?? "";
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  if (!token) {
    return (
      <>
        <h1>Set your password</h1>
        <p className="notice notice-error" role="alert">
          This link is incomplete. Open the link from your welcome e-mail again.
        </p>
        <p className="public-alt">
          <Link to="/login">Go to log in</Link>
        </p>
      </>
    );
  }

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (password.length < MIN_PASSWORD_LENGTH) {
      setErrors({ password: `Use at least ${MIN_PASSWORD_LENGTH} characters.` });
      return;
    }
    if (password !== confirm) {
      setErrors({ confirm: "The two passwords differ." });
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      await publicApi.setPassword(token, password);
      setDone(true);
    } catch (e) {
      const err = e as ApiError;
      if (err.fields.password) setErrors({ password: err.fields.password });
      else if (err.fields.token) setError(`This link ${err.fields.token.toLowerCase()}. Ask for a new one.`);
      else setError(err.message);
    } finally {
      setBusy(false);
    }
  };

  const goToLogin = async () => {
    // Whoever was signed in on this browser is not who just set a password.
    if (status !== "anonymous") await logout();
    navigate("/login", { replace: true });
  };

  if (done) {
    return (
      <div className="done" role="status">
        <div className="done-icon done-icon-success" aria-hidden="true">
          ✓
        </div>
        <h1>Your password is set</h1>
        <p className="lede">You can now log in with your e-mail and new password.</p>
        <button type="button" className="button button-primary button-block" onClick={() => void goToLogin()}>
          Continue to log in
        </button>
      </div>
    );
  }

  return (
    <>
      <h1>Set your password</h1>
      <p className="lede">Choose the password for your new Diquis account.</p>
      <div className="password-rules" id="password-rules">
        <p>Your password must be:</p>
        <ul>
          {PASSWORD_RULES.map((rule) => (
            <li key={rule}>{rule}</li>
          ))}
        </ul>
        <p>A few unrelated words with a number or symbol work well.</p>
      </div>
      {error && (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} className="form" noValidate>
        <Field
          label="New password"
          type="password"
          name="password"
          autoComplete="new-password"
          required
          minLength={MIN_PASSWORD_LENGTH}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          hint="See the rules above; if one is not met, this page says which."
          error={errors.password}
          autoFocus
        />
        <Field
          label="Repeat the password"
          type="password"
          name="confirm"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={errors.confirm}
        />
        <button type="submit" className="button button-primary button-block" disabled={busy}>
          {busy ? "Saving…" : "Set password"}
        </button>
      </form>
    </>
  );
}
