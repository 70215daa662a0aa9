// Form errors said once and all together: a summary announced by screen readers, every
// bad field marked, and focus moved to the first of them (or the summary) after a submit.
import { useEffect, useRef, type RefObject } from "react";

/** An error for each bad field, in the order the form shows the fields. */
export type FieldErrors = Record<string, string>;

/** The first invalid field gets focus after each failed submit (`attempt` counts them). */
export function useFocusFirstError(
  form: RefObject<HTMLFormElement | null>,
  summary: RefObject<HTMLDivElement | null>,
  attempt: number,
): void {
  const seen = useRef(attempt);
  useEffect(() => {
    if (attempt === seen.current) return;
    seen.current = attempt;
    const invalid = form.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
    if (invalid) invalid.focus();
    else summary.current?.focus();
  }, [attempt, form, summary]);
}

/** The live region above a form: a general error and/or every field error, by label. */
export function ErrorSummary({
  errors,
  labels,
  error,
  ref,
}: {
  errors: FieldErrors;
  labels: Record<string, string>;
  error?: string | null;
  ref?: RefObject<HTMLDivElement | null>;
}) {
  const fields = Object.entries(errors);
  const count = fields.length;
  return (
    <div ref={ref} className="error-summary-region" role="alert" aria-live="assertive" tabIndex={-1}>
      {(error || count > 0) && (
        <div className="notice notice-error error-summary">
          {error && <p className="error-summary-text">{error}</p>}
          {count > 0 && (
            <>
              <p className="error-summary-title">
                {count === 1 ? "Please fix this field:" : `Please fix these ${count} fields:`}
              </p>
              <ul>
                {fields.map(([name, message]) => (
                  <li key={name}>
                    {labels[name] ?? name}: {message}
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      )}
    </div>
  );
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The client-side checks every form shares; the server checks again. */
export function requireFields(values: Record<string, string>, emails: string[] = []): FieldErrors {
  const errors: FieldErrors = {};
  for (const [name, value] of Object.entries(values)) {
    if (!value.trim()) errors[name] = "Required.";
    else if (emails.includes(name) && !EMAIL.test(value.trim()))
      errors[name] = "Enter an e-mail address like name@example.com.";
  }
  return errors;
}

/** Field errors from the server, keeping only fields this form has (in its order). */
export function pickFields(fields: Record<string, string>, order: string[]): FieldErrors {
  const picked: FieldErrors = {};
  for (const name of order) if (fields[name]) picked[name] = fields[name];
  return picked;
}
