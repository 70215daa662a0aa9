"""The HTTP API (FastAPI): auth, tenants, sign-up, notifications, dev mailbox."""
