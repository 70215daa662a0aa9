// Toasts: short messages in a corner, announced to screen readers, dismissed by time or hand.
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from "react";
import type { NotificationType } from "./api";

export interface Toast {
  id: number;
  type: NotificationType;
  message: string;
}

interface Toasts {
  show: (type: NotificationType, message: string) => void;
  dismiss: (id: number) => void;
}

const ToastContext = createContext<Toasts | null>(null);

/** How long a toast stays, in ms; problems stay longer so they can be read. */
export const TOAST_DURATION: Record<NotificationType, number> = {
  Success: 8000,
  Info: 8000,
  Warning: 12000,
  Error: 15000,
};

const MAX_TOASTS = 5;

const ICONS: Record<NotificationType, string> = {
  Success: "✓",
  Info: "i",
  Warning: "!",
  Error: "✕",
};

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextId = useRef(1);

  const dismiss = useCallback((id: number) => {
    setToasts((current) => current.filter((toast) => toast.id !== id));
  }, []);

  const show = useCallback(
    (type: NotificationType, message: string) => {
      const kind: NotificationType = type in TOAST_DURATION ? type : "Info";
      const id = nextId.current++;
      // Each toast times itself out (ToastView), pausing while pointed at or focused.
      setToasts((current) => [...current, { id, type: kind, message }].slice(-MAX_TOASTS));
    },
    [],
  );

  const value = useMemo(() => ({ show, dismiss }), [show, dismiss]);
  const polite = toasts.filter((t) => t.type === "Success" || t.type === "Info");
  const urgent = toasts.filter((t) => t.type === "Error" || t.type === "Warning");
  return (
    <ToastContext.Provider value={value}>
      {children}
      {/* Both live regions always exist, so screen readers announce what is added. */}
      <div className="toasts">
        <div role="status" aria-live="polite" className="toast-region">
          {polite.map((toast) => (
            <ToastView key={toast.id} toast={toast} onDismiss={dismiss} />
          ))}
        </div>
        <div role="alert" aria-live="assertive" className="toast-region">
          {urgent.map((toast) => (
            <ToastView key={toast.id} toast={toast} onDismiss={dismiss} />
          ))}
        </div>
      </div>
    </ToastContext.Provider>
  );
}

function ToastView({ toast, onDismiss }: { toast: Toast; onDismiss: (id: number) => void }) {
  const [hovered, setHovered] = useState(false);
  const [focused, setFocused] = useState(false);
  const paused = hovered || focused;
  const remaining = useRef(TOAST_DURATION[toast.type]);

  // Count down only while nobody points at or focuses the toast (WCAG 2.2.1).
  useEffect(() => {
    if (paused) return undefined;
    const started = Date.now();
    const timer = setTimeout(() => onDismiss(toast.id), remaining.current);
    return () => {
      clearTimeout(timer);
      remaining.current = Math.max(1000, remaining.current - (Date.now() - started));
    };
  }, [paused, onDismiss, toast.id]);

  return (
    <div
      className={`toast toast-${toast.type.toLowerCase()}`}
      data-type={toast.type}
      data-paused={paused ? "true" : undefined}
      onMouseEnter={() => setHovered(true)}
      onMouseLeave={() => setHovered(false)}
      onFocus={() => setFocused(true)}
      onBlur={(event) => {
        if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setFocused(false);
      }}
    >
      <span className="toast-icon" aria-hidden="true">
        {ICONS[toast.type]}
      </span>
      <p className="toast-message">
        <span className="visually-hidden">{toast.type}: </span>
        {toast.message}
      </p>
      <button
        type="button"
        className="toast-close"
        aria-label="Dismiss notification"
        onClick={() => onDismiss(toast.id)}
      >
        ×
      </button>
    </div>
  );
}

export function useToasts(): Toasts {
  const toasts = useContext(ToastContext);
  if (!toasts) throw new Error("useToasts must be used inside <ToastProvider>");
  return toasts;
}
