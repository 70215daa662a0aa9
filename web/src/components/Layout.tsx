import type { ReactNode } from "react";
import { useAuth } from "../auth";
import { Link, navigate, useLocation } from "../router";
import { ConnectionIndicator } from "./ConnectionIndicator";
import { NotificationBell } from "./NotificationBell";

/** The brand mark (the same mark, colours and size as the jobs dashboard's). */
export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
      <rect width="32" height="32" rx="7" fill="#4f46e5" />
      <path d="M10 8h6.5a8 8 0 0 1 0 16H10z" fill="none" stroke="#ffffff" strokeWidth="3" />
      <circle cx="16.5" cy="16" r="2.5" fill="#ffffff" />
    </svg>
  );
}

function NavLink({ to, children }: { to: string; children: ReactNode }) {
  const { pathname } = useLocation();
  const current = pathname === to || pathname.startsWith(`${to}/`);
  return (
    <Link to={to} className="nav-link" aria-current={current ? "page" : undefined}>
      {children}
    </Link>
  );
}

/** The signed-in layout: top bar (navigation, live status, bell, account) and the page. */
export function AppShell({ children }: { children: ReactNode }) {
  const { user, logout } = useAuth();
  const superAdmin = user?.role === "SuperAdmin";
  const onLogout = async () => {
    await logout();
    navigate("/login", { replace: true });
  };
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar-inner">
          <Link to="/" className="brand">
            <Logo />
            <span>Diquis</span>
          </Link>
          <nav className="nav" aria-label="Main">
            {superAdmin ? (
              <>
                <NavLink to="/tenants">Tenants</NavLink>
                <NavLink to="/mailbox">Mailbox</NavLink>
                <a className="nav-link" href="/hangfire/" target="_blank" rel="noopener">
                  Jobs dashboard
                  <span aria-hidden="true"> ↗</span>
                  <span className="visually-hidden"> (opens in a new tab)</span>
                </a>
              </>
            ) : null}
          </nav>
          <div className="topbar-actions">
            <ConnectionIndicator />
            <NotificationBell />
            <div className="account">
              <Link to="/account" className="account-email" title="Your account">
                <span className="account-short">Account</span>
                <span className="account-address">{user?.email}</span>
                <span className="account-role">{user?.role === "SuperAdmin" ? "Super admin" : "Admin"}</span>
              </Link>
              <button type="button" className="button button-ghost" onClick={() => void onLogout()}>
                Log out
              </button>
            </div>
          </div>
        </div>
      </header>
      <main id="main" className="page" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

/** The signed-out layout: a centred card under the brand. */
export function PublicShell({ children }: { children: ReactNode }) {
  return (
    <div className="public">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="public-head">
        <Link to="/" className="brand">
          <Logo />
          <span>Diquis</span>
        </Link>
      </header>
      <main id="main" className="public-main" tabIndex={-1}>
        <div className="card public-card">{children}</div>
      </main>
      <footer className="public-foot">Tenant provisioning with live status, by Diquis.</footer>
    </div>
  );
}
