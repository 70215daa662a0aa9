import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, publicApi, type PasswordTokenInfo } from "../api";
import { useAuth } from "../auth";
import { Field } from "../components/Field";
import { checkNewPassword, PasswordRules } from "../components/PasswordRules";
import { ErrorSummary, pickFields, useFocusFirstError, type FieldErrors } from "../forms";
import { Link, navigate, useLocation } from "../router";

export { MIN_PASSWORD_LENGTH, PASSWORD_RULES } from "../components/PasswordRules";

type LinkState =
  | { kind: "checking" }
  | { kind: "ok"; info: PasswordTokenInfo }
  | { kind: "unusable"; why: string };

/** What a person whose link does not work should do next, with the way there. */
function UnusableLink({ why }: { why: string }) {
  const used = /used/i.test(why);
  return (
    <>
      <h1>{used ? "This link has been used" : "This link no longer works"}</h1>
      <p className="notice notice-error" role="alert">
        {used
          ? "Each link works once, and this one set a password already."
          : `This link ${why.toLowerCase().replace(/\.$/, "")}.`}{" "}
        {used
          ? "If that was you, log in with that password. Otherwise ask for a new link."
          : "Ask for a new link: it arrives by e-mail and works for one hour."}
      </p>
      <div className="button-row">
        {used ? (
          <>
            <Link to="/login" className="button button-primary">
              Log in
            </Link>
            <Link to="/forgot-password" className="button button-secondary">
              Get a new link
            </Link>
          </>
        ) : (
          <>
            <Link to="/forgot-password" className="button button-primary">
              Get a new link
            </Link>
            <Link to="/login" className="button button-secondary">
              Log in
            </Link>
          </>
        )}
      </div>
    </>
  );
}

export function SetPasswordPage() {
  const { search } = useLocation();
  const { status, logout } = useAuth();
  const token = new URLSearchParams(search).get("token") ?? "";
  const [link, setLink] = useState<LinkState>({ kind: "checking" });
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const form = useRef<HTMLFormElement>(null);
  const summary = useRef<HTMLDivElement>(null);
  useFocusFirstError(form, summary, attempt);

  // Whom the link is for: asked with a POST, so the token is never in a GET's URL or logs.
  useEffect(() => {
    if (!token) return;
    let current = true;
    publicApi.passwordToken(token).then(
      (info) => current && setLink({ kind: "ok", info }),
      (e: ApiError) =>
        current && setLink({ kind: "unusable", why: e.fields.token ?? e.message ?? "is not valid" }),
    );
    return () => {
      current = false;
    };
  }, [token]);

  if (!token) {
    return (
      <>
        <h1>Set your password</h1>
        <p className="notice notice-error" role="alert">
          This link is incomplete. Open the link from your e-mail again, or ask for a new one.
        </p>
        <p className="public-alt">
          <Link to="/forgot-password">Get a new link</Link> · <Link to="/login">Go to log in</Link>
        </p>
      </>
    );
  }
  if (link.kind === "checking") {
    return (
      <p className="muted" role="status">
        Checking your link…
      </p>
    );
  }
  if (link.kind === "unusable") return <UnusableLink why={link.why} />;
  const { info } = link;
  const reset = info.purpose === "reset";

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setError(null);
    const problems = checkNewPassword(password, confirm);
    setErrors(problems);
    if (Object.keys(problems).length) {
      setAttempt((n) => n + 1);
      return;
    }
    setBusy(true);
    try {
      await publicApi.setPassword(token, password);
      setDone(true);
    } catch (e) {
      const err = e as ApiError;
      if (err.fields.token) {
        setLink({ kind: "unusable", why: err.fields.token });
        return;
      }
      const fields = pickFields(err.fields, ["password"]);
      if (Object.keys(fields).length) setErrors(fields);
      else setError(err.message);
      setAttempt((n) => n + 1);
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
        <p className="lede">You can now log in as {info.email} with your new password.</p>
        <button type="button" className="button button-primary button-block" onClick={() => void goToLogin()}>
          Continue to log in
        </button>
      </div>
    );
  }

  return (
    <>
      <h1>{reset ? "Choose a new password" : "Set your password"}</h1>
      <p className="lede account-for" data-testid="account-for">
        For <strong>{info.email}</strong>
        {info.organization ? (
          <>
            {" "}
            at <strong>{info.organization}</strong>
          </>
        ) : null}
        .
      </p>
      <PasswordRules id="password-rules" email={info.email} organization={info.organization} />
      <ErrorSummary
        ref={summary}
        errors={errors}
        error={error}
        labels={{ password: "New password", confirm: "Repeat the password" }}
      />
      <form ref={form} onSubmit={(e) => void submit(e)} className="form" noValidate>
        <Field
          label="New password"
          type="password"
          name="password"
          autoComplete="new-password"
          required
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
        <button type="submit" className="button button-primary button-block" aria-busy={busy}>
          {busy ? "Saving…" : "Set password"}
        </button>
      </form>
    </>
  );
}
