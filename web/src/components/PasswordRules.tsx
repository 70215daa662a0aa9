export const MIN_PASSWORD_LENGTH = 10;

/** Every rule the server checks (identity/passwords.py), said before anyone types. */
export const PASSWORD_RULES = [
  `At least ${MIN_PASSWORD_LENGTH} characters long (at most 256).`,
  "Hard to guess: not a common password, a single word, a name, a date, a keyboard pattern (qwerty) or a sequence (abcdef, 12345).",
  "Not built from your e-mail address or your organisation's name.",
];

/** The words a new password must not lean on, for this account. */
export function personalWords(email?: string | null, organization?: string | null): string[] {
  const words: string[] = [];
  const local = email?.split("@")[0];
  if (local) words.push(local);
  if (organization) words.push(organization);
  return words;
}

/** The rules as a list, naming this account's own words when they are known. */
export function PasswordRules({
  id,
  email,
  organization,
}: {
  id: string;
  email?: string | null;
  organization?: string | null;
}) {
  const words = personalWords(email, organization);
  return (
    <div className="password-rules" id={id}>
      <p>Your password must be:</p>
      <ul>
        {PASSWORD_RULES.map((rule) => (
          <li key={rule}>{rule}</li>
        ))}
        {words.length > 0 && (
          <li data-testid="personal-words">
            So it must not contain {words.map((w, i) => (
              <span key={w}>
                {i > 0 && " or "}
                <strong>“{w}”</strong>
              </span>
            ))}
            .
          </li>
        )}
      </ul>
      <p>A few unrelated words with a number or symbol work well.</p>
    </div>
  );
}

/** Client-side checks of a new password and its confirmation (all errors at once). */
export function checkNewPassword(
  password: string,
  confirm: string,
  names: { password: string; confirm: string } = { password: "password", confirm: "confirm" },
): Record<string, string> {
  const errors: Record<string, string> = {};
  if (password.length < MIN_PASSWORD_LENGTH)
    errors[names.password] = `Use at least ${MIN_PASSWORD_LENGTH} characters.`;
  if (!confirm) errors[names.confirm] = "Required.";
  else if (password !== confirm) errors[names.confirm] = "The two passwords differ.";
  return errors;
}
