"""The notifications hub at ``/hubs/notifications``: who joins which group, and how a
connection is authenticated (the same JWT as the API)."""

from __future__ import annotations

import jwt

from ..identity import InvalidTokenError, verify_token
from ..realtime import Authenticator, AuthRequest, Hub, Identity
from .infrastructure.notifier import SUPERADMINS_GROUP

HUB_NAME = "notifications"


class NotificationsHub(Hub):
    """Server-to-client only: ReceiveNotification and TenantStatusChanged."""

    async def on_connected(self) -> None:
        if self.context.claims.get("role") == "SuperAdmin":
            await self.groups.add(self.context.connection_id, SUPERADMINS_GROUP)


def token_authenticator(secret: str) -> Authenticator:
    """Accept the API's access tokens; the identity's user id is the token's ``sub``."""

    async def authenticate(request: AuthRequest) -> Identity | None:
        try:
            principal = verify_token(secret, request.token or "")
        except InvalidTokenError:
            return None
        return Identity(
            user_id=principal.user_id,
            claims={"role": principal.role, "tenant_id": principal.tenant_id},
            expires_at=_expiry(request.token or ""),
        )

    return authenticate


def _expiry(token: str) -> float | None:
    """The ``exp`` of a token ``verify_token`` has just accepted (so its signature is good)."""
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    return float(exp) if isinstance(exp, int | float) else None
