"""Notifications: stored per user (the inbox) and pushed through the hub, once per key."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ...jobs import current_job
from ...realtime import HubContext
from ..domain import Tenant
from .db import Catalog, notifications
from .repositories import SqlUsers, utcnow

log = logging.getLogger(__name__)
SUPERADMINS_GROUP = "superadmins"


class HubNotifier:
    """Notifier over the catalog and a hub context (local hub or backplane publisher)."""

    def __init__(
        self,
        catalog: Catalog,
        users: SqlUsers,
        hub: Callable[[], HubContext],
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.catalog = catalog
        self.users = users
        self.hub = hub
        self.clock = clock

    async def notify_user(
        self, user_id: str, kind: str, message: str, *, key: str, link: str | None = None
    ) -> bool:
        def write(conn: Connection) -> bool:
            nested = conn.begin_nested()
            try:
                conn.execute(
                    insert(notifications).values(
                        user_id=user_id, kind=kind, message=message[:500], key=key,
                        created_at=self.clock(), read_at=None, link=link,
                    )
                )  # fmt: skip
            except IntegrityError:
                nested.rollback()
                return False
            nested.commit()
            return True

        if not await self.catalog.run(write):
            return False
        try:
            await self.hub().clients.user(user_id).send("ReceiveNotification", kind, message)
        except Exception:
            # stored already: the user sees it in the inbox even if the push is lost
            log.exception("pushing notification %s to user %s failed", key, user_id)
        return True

    async def tenant_status_changed(self, tenant: Tenant) -> None:
        event = {
            "id": tenant.id, "name": tenant.name, "status": tenant.status.value,
            "last_error": tenant.last_error,
        }  # fmt: skip
        hub = self.hub()
        try:
            await hub.clients.group(SUPERADMINS_GROUP).send("TenantStatusChanged", event)
            admins = await self.users.tenant_admins(tenant.id)
            if admins:
                await hub.clients.users(admins).send("TenantStatusChanged", event)
        except Exception:
            log.exception("pushing the status of tenant %s failed", tenant.id)

    async def tenant_progress(self, tenant: Tenant, step: int, steps: int, label: str) -> None:
        percent = round(100 * (step - 1) / steps) if step <= steps else 100
        with contextlib.suppress(LookupError):  # outside a job (a test, a script): no job
            current_job().report_progress(percent, f"{min(step, steps)}/{steps} {label}")
        event = {
            "id": tenant.id, "step": min(step, steps), "steps": steps, "label": label,
            "percent": percent,
        }  # fmt: skip
        hub = self.hub()
        try:
            await hub.clients.group(SUPERADMINS_GROUP).send("TenantProgress", event)
            admins = await self.users.tenant_admins(tenant.id)
            if admins:
                await hub.clients.users(admins).send("TenantProgress", event)
        except Exception:
            log.exception("pushing the progress of tenant %s failed", tenant.id)

    async def inbox(self, user_id: str, unread_only: bool, limit: int = 50) -> dict[str, Any]:
        """The user's notifications, newest first, and how many are unread."""

        def read(conn: Connection) -> dict[str, Any]:
            query = select(notifications).where(notifications.c.user_id == user_id)
            if unread_only:
                query = query.where(notifications.c.read_at.is_(None))
            rows = conn.execute(
                query.order_by(notifications.c.id.desc()).limit(limit)
            ).mappings().all()  # fmt: skip
            unread = conn.execute(
                select(func.count())
                .select_from(notifications)
                .where((notifications.c.user_id == user_id) & notifications.c.read_at.is_(None))
            ).scalar_one()
            items = [
                {
                    "id": r["id"],
                    "type": r["kind"],
                    "message": r["message"],
                    "created_at": r["created_at"].isoformat(),
                    "read_at": r["read_at"].isoformat() if r["read_at"] else None,
                    "link": r["link"],
                }
                for r in rows
            ]
            return {"items": items, "unread": int(unread)}

        return await self.catalog.read(read)

    async def mark_read(self, user_id: str, notification_id: int) -> bool:
        """Mark one of the user's notifications read; whether it was theirs."""

        def write(conn: Connection) -> bool:
            found = conn.execute(
                select(notifications.c.id).where(
                    (notifications.c.id == notification_id) & (notifications.c.user_id == user_id)
                )
            ).first()
            if found is None:
                return False
            conn.execute(
                update(notifications)
                .where((notifications.c.id == notification_id) & notifications.c.read_at.is_(None))
                .values(read_at=self.clock())
            )  # fmt: skip
            return True

        return await self.catalog.run(write)
