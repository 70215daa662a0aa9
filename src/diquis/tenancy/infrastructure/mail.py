"""E-mail: at most once per key (an outbox table), over SMTP or a development mailbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from ..application.ports import Email
from .db import Catalog, emails
from .repositories import utcnow


class MailTransport(Protocol):
    """Delivers one e-mail."""

    async def deliver(self, email: Email) -> None:
        """Send ``email`` (raise on failure)."""
        ...


class SmtpTransport:
    """Sends through an SMTP server: ``smtp://user:pass@host:port`` (``smtps://`` for TLS)."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.hostname = parts.hostname or "localhost"
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender

    async def deliver(self, email: Email) -> None:
        await aiosmtplib.send(
            to_message(email, self.sender),
            hostname=self.hostname, port=self.port, username=self.username,
            password=self.password, use_tls=self.tls, start_tls=False if not self.tls else None,
            timeout=30,
        )  # fmt: skip


def to_message(email: Email, sender: str) -> EmailMessage:
    """An RFC 5322 message: plain text, with an HTML alternative when given."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message.set_content(email.text)
    if email.html:
        message.add_alternative(email.html, subtype="html")
    return message


class DevMailbox:
    """Keeps e-mails as JSON files under the data dir, for the demo and development."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def deliver(self, email: Email) -> None:
        await asyncio.to_thread(self._write, email)

    def _write(self, email: Email) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        item = {
            "id": f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}", "to": email.to,
            "subject": email.subject, "text": email.text, "html": email.html,
            "created_at": now.isoformat(),
        }  # fmt: skip
        tmp = self.folder / f".{item['id']}.tmp"
        # e-mails hold set-password links: readable by the server's user only
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(json.dumps(item))
        tmp.rename(self.folder / f"{item['id']}.json")  # readers never see half a file

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        """Kept e-mails, newest first."""
        if not self.folder.exists():
            return []
        files = sorted(self.folder.glob("*.json"), reverse=True)[:limit]
        return [json.loads(f.read_text()) for f in files]


class OutboxMailer:
    """Mailer: records each key in the catalog so a retried job sends its e-mail once.

    A key is marked ``sending`` before delivery and ``sent`` after; a crash in between
    sends again on the retry (at-least-once within that window: SMTP has no idempotency).
    """

    def __init__(self, catalog: Catalog, transport: MailTransport) -> None:
        self.catalog = catalog
        self.transport = transport

    async def was_sent(self, key: str) -> bool:
        status = await self.catalog.run(
            lambda c: c.execute(select(emails.c.status).where(emails.c.key == key)).scalar()
        )
        return status == "sent"

    async def send(self, email: Email, *, key: str) -> bool:
        def claim(conn: Connection) -> bool:
            status = conn.execute(select(emails.c.status).where(emails.c.key == key)).scalar()
            if status == "sent":
                return False
            if status is None:
                conn.execute(
                    emails.insert().values(
                        key=key, to_addr=email.to, subject=email.subject[:300], status="sending",
                        created_at=utcnow(), sent_at=None,
                    )
                )  # fmt: skip
            return True

        if not await self.catalog.run(claim):
            return False
        await self.transport.deliver(email)
        await self.catalog.run(
            lambda c: c.execute(
                update(emails).where(emails.c.key == key).values(status="sent", sent_at=utcnow())
            )
        )
        return True
