"""One settings object, read from ``DIQUIS_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROVISIONING_STEPS = ("create_database", "migrate", "seed", "notify", "email")


class SettingsError(ValueError):
    """An environment variable with a value Diquis cannot use; the message names it."""


def _scheme(url: str) -> str:
    """What a URL's error message may show of it: the scheme, never the password after it."""
    return url.split(":", 1)[0] if "://" in url else "(none)"


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def ws_deflate(env: Mapping[str, str] | None = None) -> bool:
    """``DIQUIS_WS_DEFLATE``: offer WebSocket permessage-deflate (off unless set to 1)."""
    return _bool(os.environ if env is None else env, "DIQUIS_WS_DEFLATE")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} must not be negative")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _prefix(env: Mapping[str, str]) -> str:
    raw = env.get("DIQUIS_TENANT_DB_PREFIX", "").strip() or "diquis_tenant_"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,20}", raw):
        raise SettingsError(
            f"DIQUIS_TENANT_DB_PREFIX={raw!r}: use at most 21 lower-case letters, digits and _"
        )
    return raw


#: where a built wheel keeps the web app (``make wheel`` puts web/dist there)
PACKAGED_WEB_DIR = Path(__file__).resolve().parent / "_web"


def web_dir(env: Mapping[str, str]) -> Path:
    """The built web app: DIQUIS_WEB_DIR, else the wheel's copy, else ./web/dist."""
    if env.get("DIQUIS_WEB_DIR"):
        return Path(env["DIQUIS_WEB_DIR"]).resolve()
    if (PACKAGED_WEB_DIR / "index.html").is_file():
        return PACKAGED_WEB_DIR
    return Path("web/dist").resolve()


def parse_trusted_proxies(raw: str) -> tuple[str, ...]:
    """``10.0.0.1, 10.1.0.0/16`` -> ("10.0.0.1", "10.1.0.0/16"); each must be an IP or CIDR."""
    proxies: list[str] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"DIQUIS_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network"
            ) from None
        proxies.append(item)
    return tuple(proxies)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it readable by its owner only (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def parse_faults(raw: str) -> dict[str, int]:
    """``migrate:2,email:1`` -> {"migrate": 2, "email": 1}; names must be provisioning steps."""
    faults: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        step, _, count = item.partition(":")
        if step not in PROVISIONING_STEPS:
            raise SettingsError(
                f"DIQUIS_FAULTS names an unknown step {step!r}; "
                f"steps: {', '.join(PROVISIONING_STEPS)}"
            )
        try:
            faults[step] = int(count or "1")
        except ValueError:
            raise SettingsError(f"DIQUIS_FAULTS count for {step!r} is not a number") from None
    return faults


def _secret(data_dir: Path, env: Mapping[str, str]) -> str:
    given = env.get("DIQUIS_SECRET_KEY", "").strip()
    if given:
        if len(given) < 32:
            raise SettingsError("DIQUIS_SECRET_KEY must be at least 32 characters")
        return given
    path = data_dir / "secret_key"
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        pass
    else:
        path.chmod(0o600)  # a file from an older version may be readable by others
        return key
    key = secrets.token_urlsafe(48)
    # O_EXCL: when several processes start at once, one key wins and all read it
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = env.get("DIQUIS_METRICS_TOKEN", "").strip()
    if token and len(token) < 16:
        raise SettingsError("DIQUIS_METRICS_TOKEN must be at least 16 characters")
    return token or None


@dataclass(frozen=True)
class Settings:
    """Everything the application reads from its environment."""

    data_dir: Path
    database_url: str
    secret_key: str
    public_url: str
    smtp_url: str | None
    mail_from: str
    backplane_url: str
    dev: bool
    faults: dict[str, int] = field(default_factory=dict)
    demo_step_delay: float = 0.0
    #: multiplies the job engine's default retry delays (tests and chaos runs shorten them)
    retry_delay_scale: float = 1.0
    web_dir: Path = Path("web/dist")
    token_ttl: int = 8 * 3600
    #: catalog connections per process: up to pool size + overflow, opened as needed, kept
    db_pool_size: int = 5
    db_max_overflow: int = 10
    #: a tenant Provisioning for longer than this (seconds) is shown as stuck
    provisioning_stuck_after: float = 600.0
    #: PostgreSQL tenant databases are named prefix + slug (one namespace per server)
    tenant_db_prefix: str = "diquis_tenant_"
    hub_max_connections_per_user: int = 100
    #: proxies whose X-Forwarded-For / -Proto are believed; none: the client is the peer
    trusted_proxies: tuple[str, ...] = ()
    #: the largest request body the API accepts (413 above it)
    max_body_bytes: int = 1024 * 1024
    #: the bearer token /metrics answers to; None: /metrics is off (404)
    metrics_token: str | None = None
    #: offer WebSocket permessage-deflate (costs ~40 KiB and a compression per message per
    #: connection; off, the hub writes one frame to every socket)
    ws_deflate: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``DIQUIS_*`` variables; unset ones get the embedded defaults."""
        env = os.environ if env is None else env
        data_dir = private_dir(Path(env.get("DIQUIS_DATA_DIR", "./.diquis")).resolve())
        database_url = env.get("DIQUIS_DATABASE_URL") or f"sqlite:///{data_dir}/diquis.db"
        if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise SettingsError(
                f"DIQUIS_DATABASE_URL has the scheme {_scheme(database_url)!r}: "
                "use sqlite:///path or postgresql://..."
            )
        public_url = env.get("DIQUIS_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            raise SettingsError(f"DIQUIS_PUBLIC_URL={public_url!r} must start with http(s)://")
        smtp_url = env.get("DIQUIS_SMTP_URL") or None
        if smtp_url is not None and not smtp_url.startswith(("smtp://", "smtps://")):
            raise SettingsError(
                f"DIQUIS_SMTP_URL has the scheme {_scheme(smtp_url)!r}: "
                "it must start with smtp:// or smtps://"
            )
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            secret_key=_secret(data_dir, env),
            public_url=public_url,
            smtp_url=smtp_url,
            mail_from=env.get("DIQUIS_MAIL_FROM", "Diquis <no-reply@diquis.local>"),
            backplane_url=env.get("DIQUIS_BACKPLANE_URL") or "memory://diquis",
            dev=_bool(env, "DIQUIS_DEV"),
            faults=parse_faults(env.get("DIQUIS_FAULTS", "")),
            demo_step_delay=_float(env, "DIQUIS_DEMO_STEP_DELAY", 0.0),
            retry_delay_scale=_float(env, "DIQUIS_RETRY_DELAY_SCALE", 1.0),
            web_dir=web_dir(env),
            db_pool_size=_int(env, "DIQUIS_DB_POOL_SIZE", 5, minimum=1),
            db_max_overflow=_int(env, "DIQUIS_DB_MAX_OVERFLOW", 10),
            provisioning_stuck_after=_float(env, "DIQUIS_PROVISIONING_STUCK_AFTER", 600.0),
            tenant_db_prefix=_prefix(env),
            hub_max_connections_per_user=_int(
                env, "DIQUIS_HUB_MAX_CONNECTIONS_PER_USER", 100, minimum=1
            ),
            trusted_proxies=parse_trusted_proxies(env.get("DIQUIS_TRUSTED_PROXIES", "")),
            max_body_bytes=_int(env, "DIQUIS_MAX_BODY_BYTES", 1024 * 1024, minimum=1024),
            metrics_token=_metrics_token(env),
            ws_deflate=ws_deflate(env),
        )
