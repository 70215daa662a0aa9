import { useEffect, type ReactNode } from "react";
import { AuthProvider, useAuth } from "./auth";
import { AppShell, PublicShell } from "./components/Layout";
import { AccountPage } from "./pages/AccountPage";
import { ForgotPasswordPage } from "./pages/ForgotPasswordPage";
import { HomePage } from "./pages/HomePage";
import { LoginPage } from "./pages/LoginPage";
import { MailboxPage } from "./pages/MailboxPage";
import { MessagePage } from "./pages/MessagePage";
import { SetPasswordPage } from "./pages/SetPasswordPage";
import { SignupPage } from "./pages/SignupPage";
import { TenantPage } from "./pages/TenantPage";
import { TenantsPage } from "./pages/TenantsPage";
import { RealtimeProvider, useHubEvent } from "./realtime";
import { navigate, useLocation } from "./router";
import { ToastProvider, useToasts } from "./toasts";
import type { NotificationType } from "./api";

const TITLES: Record<string, string> = {
  "/login": "Log in",
  "/signup": "Sign up",
  "/set-password": "Set your password",
  "/forgot-password": "Forgot password",
  "/account": "Your account",
  "/tenants": "Tenants",
  "/mailbox": "Mailbox",
};

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

/** Every `ReceiveNotification` from the hub becomes a toast. */
function HubToasts() {
  const { show } = useToasts();
  useHubEvent("ReceiveNotification", (type: NotificationType, message: string) => {
    show(type, String(message));
  });
  return null;
}

function SuperAdminOnly({ children }: { children: ReactNode }) {
  const { user } = useAuth();
  return user?.role === "SuperAdmin" ? (
    <>{children}</>
  ) : (
    <MessagePage title="Not allowed" text="This page is for platform super admins." />
  );
}

function Routes() {
  const { pathname, search } = useLocation();
  const { status, user } = useAuth();

  useEffect(() => {
    const title = TITLES[pathname] ?? (pathname.startsWith("/tenants/") ? "Tenant" : undefined);
    document.title = title ? `${title} · Diquis` : "Diquis";
  }, [pathname]);

  if (pathname === "/login") return <PublicShell><LoginPage /></PublicShell>;
  if (pathname === "/signup") return <PublicShell><SignupPage /></PublicShell>;
  if (pathname === "/set-password") return <PublicShell><SetPasswordPage /></PublicShell>;
  if (pathname === "/forgot-password") return <PublicShell><ForgotPasswordPage /></PublicShell>;

  if (status === "anonymous") {
    const next = pathname === "/" ? "" : `?next=${encodeURIComponent(pathname + search)}`;
    return <Redirect to={`/login${next}`} />;
  }
  if (status === "loading" || !user) {
    return (
      <div className="loading" role="status">
        <span className="badge-dot" aria-hidden="true" /> Loading…
      </div>
    );
  }

  let page: ReactNode;
  if (pathname === "/") {
    page = user.role === "SuperAdmin" ? <Redirect to="/tenants" /> : <HomePage />;
  } else if (pathname === "/tenants") {
    page = <SuperAdminOnly><TenantsPage /></SuperAdminOnly>;
  } else if (/^\/tenants\/[0-9A-Za-z-]+$/.test(pathname)) {
    page = <SuperAdminOnly><TenantPage id={pathname.slice("/tenants/".length)} /></SuperAdminOnly>;
  } else if (pathname === "/account") {
    page = <AccountPage />;
  } else if (pathname === "/mailbox") {
    page = <SuperAdminOnly><MailboxPage /></SuperAdminOnly>;
  } else {
    page = <MessagePage title="Page not found" text={`There is no page at ${pathname}.`} />;
  }
  return <AppShell>{page}</AppShell>;
}

function Connected() {
  const { token } = useAuth();
  return (
    <RealtimeProvider token={token}>
      <HubToasts />
      <Routes />
    </RealtimeProvider>
  );
}

export function App() {
  return (
    <ToastProvider>
      <AuthProvider>
        <Connected />
      </AuthProvider>
    </ToastProvider>
  );
}
