"""The notifications hub at ``/hubs/notifications``: who joins which group, and how a
connection is authenticated (the same JWT as the API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..identity import InvalidTokenError, verify_token
from ..realtime import Authenticator, AuthRequest, Hub, Identity
from .infrastructure.notifier import SUPERADMINS_GROUP

HUB_NAME = "notifications"


class NotificationsHub(Hub):
    """Server-to-client only: ReceiveNotification, TenantStatusChanged and TenantProgress."""

    async def on_connected(self) -> None:
        if self.context.claims.get("role") == "SuperAdmin":
            await self.groups.add(self.context.connection_id, SUPERADMINS_GROUP)


def token_authenticator(
    secret: str, is_revoked: Callable[[str | None], Awaitable[bool]] | None = None
) -> Authenticator:
    """Accept the API's access tokens, unless revoked by a logout; the user id is ``sub``."""

    async def authenticate(request: AuthRequest) -> Identity | None:
        try:
            principal = verify_token(secret, request.token or "")
        except InvalidTokenError:
            return None
        if is_revoked is not None and await is_revoked(principal.token_id):
            return None
        return Identity(
            user_id=principal.user_id,
            claims={"role": principal.role, "tenant_id": principal.tenant_id},
            expires_at=principal.expires_at,
        )

    return authenticate
