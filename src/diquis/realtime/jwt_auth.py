"""A ready-made authenticator for HS256 JWTs whose `sub` claim is the user id."""

from __future__ import annotations

from collections.abc import Sequence

import jwt

from .identity import Authenticator, AuthRequest, Identity


def jwt_authenticator(
    secret: str,
    *,
    algorithms: Sequence[str] = ("HS256",),
    audience: str | None = None,
    issuer: str | None = None,
    leeway: float = 0.0,
) -> Authenticator:
    """An authenticator accepting JWTs signed with `secret`; user id = the `sub` claim."""
    if not secret:
        raise ValueError("jwt_authenticator needs a non-empty secret")
    allowed = list(algorithms)

    async def authenticate(request: AuthRequest) -> Identity | None:
        if not request.token:
            return None
        try:
            claims = jwt.decode(
                request.token,
                secret,
                algorithms=allowed,
                audience=audience,
                issuer=issuer,
                leeway=leeway,
                options={"require": ["sub"]},
            )
        except jwt.PyJWTError:
            return None
        exp = claims.get("exp")
        expires_at = float(exp) if isinstance(exp, int | float) else None
        return Identity(user_id=str(claims["sub"]), claims=claims, expires_at=expires_at)

    return authenticate
