"""Access tokens: HS256 JWTs whose ``sub`` is the user id, with the user's role and tenant."""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

ROLE_SUPERADMIN = "SuperAdmin"
ROLE_ADMIN = "Admin"
ROLES = frozenset({ROLE_SUPERADMIN, ROLE_ADMIN})

#: the HttpOnly cookie that carries the token for page navigations (the dashboard only)
SESSION_COOKIE = "diquis_session"

_ALGORITHM = "HS256"
_ISSUER = "diquis"


class InvalidTokenError(Exception):
    """A token that is malformed, badly signed, expired or missing claims."""


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for."""

    user_id: str
    role: str
    tenant_id: str | None
    email: str | None = None
    #: the token's ``jti`` and ``exp`` (set by verify_token): what a logout revokes, until when
    token_id: str | None = None
    expires_at: float | None = None

    @property
    def is_superadmin(self) -> bool:
        """Whether the user runs the platform."""
        return self.role == ROLE_SUPERADMIN


def issue_token(
    secret: str,
    principal: Principal,
    *,
    ttl: int = 3600,
    now: float | None = None,
) -> str:
    """A signed token for ``principal``, valid ``ttl`` seconds."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": principal.user_id,
        "role": principal.role,
        "tenant_id": principal.tenant_id,
        "iss": _ISSUER,
        "iat": issued,
        "exp": issued + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    if principal.email is not None:
        claims["email"] = principal.email
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


#: how many verified tokens each process remembers (the most recently used ones)
VERIFIED_CACHE_SIZE = 4096
#: the clock expiry is checked against (a name tests can replace)
clock = time.time


def verify_token(secret: str, token: str) -> Principal:
    """The principal of a valid token; InvalidTokenError saying why otherwise.

    Every API request and hub connection verifies its token, so the signature and claims of
    a token that passed once are remembered (keyed by the secret and the whole token, so a
    changed byte is a different token); only its expiry is checked again on each call.
    Failures are not remembered.
    """
    if not token:
        raise InvalidTokenError("no token")
    principal = _verified(secret, token)
    assert principal.expires_at is not None
    if clock() >= principal.expires_at:  # what PyJWT's check says: valid while now < exp
        raise InvalidTokenError("token expired")
    return principal


@functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)
def _verified(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["sub", "exp", "iat", "role", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidTokenError("token expired") from None
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"invalid token: {exc}") from None
    role = claims.get("role")
    if role not in ROLES:
        raise InvalidTokenError(f"invalid token: unknown role {role!r}")
    tenant = claims.get("tenant_id")
    return Principal(
        user_id=str(claims["sub"]),
        role=str(role),
        tenant_id=None if tenant is None else str(tenant),
        email=claims.get("email"),
        token_id=str(claims["jti"]),
        expires_at=float(claims["exp"]),
    )
