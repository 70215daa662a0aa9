import { Link } from "../router";

/** A plain page for "not found" and "not allowed". */
export function MessagePage({ title, text }: { title: string; text: string }) {
  return (
    <div className="card empty">
      <h1>{title}</h1>
      <p className="muted">{text}</p>
      <p>
        <Link to="/">Go to the start page</Link>
      </p>
    </div>
  );
}
