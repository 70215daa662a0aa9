"""E-mail: at most once per key (an outbox table), over SMTP or a development mailbox."""

from __future__ import annotations

import asyncio
import contextlib
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
from sqlalchemy.exc import IntegrityError

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


class MailInFlightError(Exception):
    """Another run is sending this e-mail right now; the job is retried and looks again."""


#: how long a ``sending`` claim holds before another run may take it over (a crash)
SEND_LEASE = dt.timedelta(seconds=60)


class OutboxMailer:
    """Mailer: records each key in the catalog so a retried job sends its e-mail once.

    A run claims a key (``sending``, with the time) before delivery and marks it ``sent``
    after; a failed delivery marks it ``failed`` so the job's retry sends it. While a claim
    is fresh, another run of the same job (a deleted run still stopping, say) does not
    send: it raises :class:`MailInFlightError` and its retry looks again. Only a crash
    between delivery and ``sent`` can send twice (SMTP has no idempotency).
    """

    def __init__(self, catalog: Catalog, transport: MailTransport) -> None:
        self.catalog = catalog
        self.transport = transport

    async def was_sent(self, key: str) -> bool:
        status = await self.catalog.read(
            lambda c: c.execute(select(emails.c.status).where(emails.c.key == key)).scalar()
        )
        return status == "sent"

    async def send(self, email: Email, *, key: str) -> bool:
        now = utcnow()

        def claim(conn: Connection) -> bool:
            row = conn.execute(
                select(emails.c.status, emails.c.claimed_at).where(emails.c.key == key)
            ).first()
            if row is None:
                nested = conn.begin_nested()
                try:
                    conn.execute(
                        emails.insert().values(
                            key=key, to_addr=email.to, subject=email.subject[:300],
                            status="sending", created_at=now, sent_at=None, claimed_at=now,
                        )
                    )  # fmt: skip
                    nested.commit()
                    return True
                except IntegrityError:
                    nested.rollback()
                    raise MailInFlightError(f"e-mail {key} is being sent by another run") from None
            status, claimed_at = row
            if status == "sent":
                return False
            if status == "sending" and claimed_at is not None and claimed_at > now - SEND_LEASE:
                raise MailInFlightError(f"e-mail {key} is being sent by another run")
            taken = conn.execute(
                update(emails)
                .where((emails.c.key == key) & (emails.c.status == status))
                .where(
                    emails.c.claimed_at.is_(None)
                    if claimed_at is None
                    else emails.c.claimed_at == claimed_at
                )
                .values(status="sending", claimed_at=now)
            )  # fmt: skip
            if taken.rowcount != 1:
                raise MailInFlightError(f"e-mail {key} is being sent by another run")
            return True

        if not await self.catalog.run(claim):
            return False
        try:
            await self.transport.deliver(email)
        except BaseException:
            # the retry (or another run) may send it: release the claim, whatever stopped us
            with contextlib.suppress(Exception):
                await self.catalog.run(
                    lambda c: c.execute(
                        update(emails)
                        .where((emails.c.key == key) & (emails.c.status == "sending"))
                        .values(status="failed")
                    )
                )
            raise
        await self.catalog.run(
            lambda c: c.execute(
                update(emails).where(emails.c.key == key).values(status="sent", sent_at=utcnow())
            )
        )
        return True
