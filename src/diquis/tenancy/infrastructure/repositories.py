"""Tenants and users in the catalog (SQL), behind the application's ports."""

from __future__ import annotations

import builtins
import datetime as dt
import functools
import hashlib
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Executable

from ...identity import ROLE_ADMIN, ROLE_SUPERADMIN, Principal, hash_password, verify_password
from ...identity.passwords import validate_password
from ..application.provision import ProvisioningError
from ..domain import (
    AdminEmailTakenError,
    DuplicateTenantError,
    InvalidFieldsError,
    ProvisioningStatus,
    Tenant,
    ValidationError,
)
from .db import (
    Catalog,
    admin_email_reservations,
    password_tokens,
    tenant_repairs,
    tenants,
    users,
)

TOKEN_TTL = dt.timedelta(hours=72)
#: how long each kind of set-password link works
TOKEN_TTLS = {"welcome": TOKEN_TTL, "reset": dt.timedelta(hours=1)}
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """Now, as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def _tenant(row: RowMapping) -> Tenant:
    return Tenant(
        id=row["id"], name=row["name"], slug=row["slug"],
        status=ProvisioningStatus(row["status"]), admin_email=row["admin_email"],
        initiator_user_id=row["initiator_user_id"], job_id=row["job_id"],
        last_error=row["last_error"], failures=row["failures"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )  # fmt: skip


# statements that run on every request, built once with their parameters named: one made
# per call costs SQLAlchemy a new cache key each time
_USER_BY_EMAIL = select(users.c.id).where(users.c.email == bindparam("email"))
_TENANT_NAMED = select(tenants.c.name).where(
    (func.lower(tenants.c.name) == bindparam("name")) | (tenants.c.slug == bindparam("slug"))
)


@functools.cache
def _insert_new_statement(dialect_name: str, table: Table) -> Executable:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    # rowcount of an INSERT is not kept by every driver: the inserted row says it instead
    statement: Executable = (
        dialect.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    )
    return statement


def _insert_new(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING`` (any unique key): whether the row went in.

    One statement per dialect and table, built once, the values passed as parameters
    (~170 µs of CPU less per insert than one built around its values, measured).
    """
    statement = _insert_new_statement(conn.dialect.name, table)
    return conn.execute(statement, values).first() is not None


class SqlTenantRepository:
    """TenantRepository over the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def add(self, tenant: Tenant, tx: object) -> None:
        def write(conn: Connection) -> None:
            taken = conn.execute(
                _TENANT_NAMED, {"name": tenant.name.lower(), "slug": tenant.slug}
            ).first()
            if taken is not None:
                raise DuplicateTenantError(f"a tenant named {taken[0]!r} exists already")
            # ON CONFLICT DO NOTHING, not a savepoint around a failing insert: two statements
            # fewer per insert. The unique constraints, not the check above, are what
            # guarantee one tenant per name when a concurrent insert wins meanwhile
            if not _insert_new(conn, tenants, _values(tenant)):
                raise DuplicateTenantError(f"a tenant named {tenant.name!r} exists already")
            # one tenant per admin e-mail, taken in this transaction: of two sign-ups racing
            # with one new address, the second fails here instead of looping Failed later
            reservation = {"email": tenant.admin_email, "tenant_id": tenant.id}
            if not _insert_new(conn, admin_email_reservations, reservation):
                raise AdminEmailTakenError("another tenant was created for that admin e-mail")

        await self.catalog.in_tx(tx, write)

    async def set_job(self, tenant_id: str, job_id: str, tx: object) -> None:
        await self.catalog.in_tx(
            tx,
            lambda conn: conn.execute(
                update(tenants).where(tenants.c.id == tenant_id).values(job_id=job_id)
            ),
        )

    async def get(self, tenant_id: str) -> Tenant | None:
        def read(conn: Connection) -> Tenant | None:
            row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).mappings().first()
            return None if row is None else _tenant(row)

        return await self.catalog.read(read)

    async def list(
        self, limit: int, offset: int, query: str | None = None, status: str | None = None
    ) -> tuple[builtins.list[Tenant], int]:
        where = []
        if query:
            pattern = (
                "%"
                + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            where.append(
                or_(*(func.lower(column).like(pattern, escape="\\")
                      for column in (tenants.c.name, tenants.c.slug, tenants.c.admin_email)))
            )  # fmt: skip
        if status:
            where.append(tenants.c.status == status)

        def read(conn: Connection) -> tuple[builtins.list[Tenant], int]:
            rows = conn.execute(
                select(tenants).where(*where)
                .order_by(tenants.c.created_at.desc(), tenants.c.id)
                .limit(limit).offset(offset)
            ).mappings().all()  # fmt: skip
            total = conn.execute(
                select(func.count()).select_from(tenants).where(*where)
            ).scalar_one()
            return [_tenant(r) for r in rows], int(total)

        return await self.catalog.read(read)

    async def save(self, tenant: Tenant) -> None:
        values = _values(tenant)
        for fixed in ("id", "name", "slug", "created_at", "admin_email", "initiator_user_id"):
            values.pop(fixed)
        await self.catalog.run(
            lambda conn: conn.execute(
                update(tenants).where(tenants.c.id == tenant.id).values(**values)
            )
        )

    async def by_job(self, job_id: str) -> Tenant | None:
        def read(conn: Connection) -> Tenant | None:
            row = conn.execute(
                select(tenants).where(tenants.c.job_id == job_id)
            ).mappings().first()  # fmt: skip
            return None if row is None else _tenant(row)

        return await self.catalog.read(read)

    async def unsettled(self) -> builtins.list[Tenant]:
        def read(conn: Connection) -> builtins.list[Tenant]:
            rows = conn.execute(
                select(tenants).where(tenants.c.status != ProvisioningStatus.ACTIVE.value)
                .order_by(tenants.c.created_at)
            ).mappings().all()  # fmt: skip
            return [_tenant(r) for r in rows]

        return await self.catalog.read(read)

    async def fail_unless_active(
        self, tenant_id: str, reason: str, now: dt.datetime
    ) -> Tenant | None:
        def write(conn: Connection) -> Tenant | None:
            # compare-and-set: never over an Active tenant, and once per reason
            changed = conn.execute(
                update(tenants)
                .where(tenants.c.id == tenant_id)
                .where(tenants.c.status != ProvisioningStatus.ACTIVE.value)
                .where(
                    (tenants.c.status != ProvisioningStatus.FAILED.value)
                    | tenants.c.last_error.is_(None)
                    | (tenants.c.last_error != reason)
                )
                .values(
                    status=ProvisioningStatus.FAILED.value, last_error=reason, updated_at=now,
                    failures=tenants.c.failures + 1,
                )
            )  # fmt: skip
            if changed.rowcount != 1:
                return None
            row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).mappings().one()
            return _tenant(row)

        return await self.catalog.run(write)

    async def count_repair(self, kind: str) -> None:
        def write(conn: Connection) -> None:
            bumped = conn.execute(
                update(tenant_repairs).where(tenant_repairs.c.kind == kind)
                .values(count=tenant_repairs.c.count + 1)
            )  # fmt: skip
            if bumped.rowcount == 0:
                nested = conn.begin_nested()
                try:
                    conn.execute(insert(tenant_repairs).values(kind=kind, count=1))
                    nested.commit()
                except IntegrityError:  # another process inserted it first
                    nested.rollback()
                    conn.execute(
                        update(tenant_repairs).where(tenant_repairs.c.kind == kind)
                        .values(count=tenant_repairs.c.count + 1)
                    )  # fmt: skip

        await self.catalog.run(write)

    def repairs(self) -> dict[str, int]:
        """Repairs made so far, by kind (blocking; /metrics)."""
        return self.catalog.run_sync(
            lambda conn: {
                str(kind): int(count)
                for kind, count in conn.execute(
                    select(tenant_repairs.c.kind, tenant_repairs.c.count)
                )
            }
        )

    async def delete(self, tenant_id: str) -> None:
        def write(conn: Connection) -> None:
            tenant_users = select(users.c.id).where(users.c.tenant_id == tenant_id)
            conn.execute(delete(password_tokens).where(password_tokens.c.user_id.in_(tenant_users)))
            conn.execute(delete(users).where(users.c.tenant_id == tenant_id))
            conn.execute(
                delete(admin_email_reservations).where(
                    admin_email_reservations.c.tenant_id == tenant_id
                )
            )
            conn.execute(delete(tenants).where(tenants.c.id == tenant_id))

        await self.catalog.run(write)

    def slugs(self) -> builtins.list[str]:
        """Slugs of every tenant whose database may exist (``diquis migrate``, tests)."""
        return [slug for slug, _ in self.slugs_and_ids()]

    def slugs_and_ids(self) -> builtins.list[tuple[str, str]]:
        """(slug, tenant id) of every tenant (blocking; ``diquis migrate``)."""
        return self.catalog.run_sync(
            lambda conn: [
                (str(r[0]), str(r[1]))
                for r in conn.execute(select(tenants.c.slug, tenants.c.id).order_by(tenants.c.slug))
            ]
        )


def _values(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id, "name": tenant.name, "slug": tenant.slug, "status": tenant.status.value,
        "admin_email": tenant.admin_email, "initiator_user_id": tenant.initiator_user_id,
        "job_id": tenant.job_id, "last_error": tenant.last_error, "failures": tenant.failures,
        "created_at": tenant.created_at, "updated_at": tenant.updated_at,
    }  # fmt: skip


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    """A real hash to verify against when the user does not exist: login timing stays even.

    Made on first login, not at import: argon2 is slow on purpose, and workers never log in.
    """
    return hash_password("no-such-user-timing-guard")


class SqlUsers:
    """Users in the catalog: logins, super admins, tenant admins, set-password tokens."""

    def __init__(self, catalog: Catalog, clock: Clock = utcnow) -> None:
        self.catalog = catalog
        self.clock = clock

    async def authenticate(self, email: str, password: str) -> Principal | None:
        """The principal for a correct e-mail and password, else None."""
        row = await self.catalog.read(
            lambda c: c.execute(select(users).where(users.c.email == email.strip().lower()))
            .mappings().first()
        )  # fmt: skip
        hashed = row["password_hash"] if row is not None else None
        if not verify_password(password, hashed or _dummy_hash()) or row is None or not hashed:
            return None
        return Principal(row["id"], row["role"], row["tenant_id"], row["email"])

    async def get(self, user_id: str) -> Principal | None:
        """A user by id, as a principal."""
        row = await self.catalog.read(
            lambda c: c.execute(select(users).where(users.c.id == user_id)).mappings().first()
        )
        return (
            None
            if row is None
            else Principal(row["id"], row["role"], row["tenant_id"], row["email"])
        )

    def ensure_superadmin(self, email: str, password: str) -> tuple[str, bool]:
        """Create the super admin, or reset its password; (user id, created?)."""
        validate_password(password, email=email)
        hashed = hash_password(password)

        def write(conn: Connection) -> tuple[str, bool]:
            row = conn.execute(
                select(users.c.id, users.c.role).where(users.c.email == email)
            ).first()
            if row is not None:
                if row[1] != ROLE_SUPERADMIN:
                    raise ValidationError("email", "belongs to a tenant user, not a super admin")
                conn.execute(update(users).where(users.c.id == row[0]).values(password_hash=hashed))
                return str(row[0]), False
            user_id = str(uuid.uuid4())
            conn.execute(
                insert(users).values(
                    id=user_id, email=email, password_hash=hashed, role=ROLE_SUPERADMIN,
                    tenant_id=None, created_at=self.clock(),
                )
            )  # fmt: skip
            return user_id, True

        return self.catalog.run_sync(write)

    async def email_taken(self, email: str) -> bool:
        """Whether any user has this e-mail."""
        row = await self.catalog.read(lambda c: c.execute(_USER_BY_EMAIL, {"email": email}).first())
        return row is not None

    async def ensure_tenant_admin(self, tenant_id: str, email: str) -> str:
        def write(conn: Connection) -> str:
            row = conn.execute(
                select(users.c.id, users.c.tenant_id).where(users.c.email == email)
            ).first()
            if row is not None:
                if row[1] != tenant_id:
                    raise ProvisioningError("the admin e-mail belongs to another account")
                return str(row[0])
            user_id = str(uuid.uuid4())
            conn.execute(
                insert(users).values(
                    id=user_id, email=email, password_hash=None, role=ROLE_ADMIN,
                    tenant_id=tenant_id, created_at=self.clock(),
                )
            )  # fmt: skip
            return user_id

        return await self.catalog.run(write)

    async def has_password(self, user_id: str) -> bool:
        row = await self.catalog.read(
            lambda c: c.execute(select(users.c.password_hash).where(users.c.id == user_id)).first()
        )
        return row is not None and row[0] is not None

    async def issue_password_token(self, user_id: str, purpose: str = "welcome") -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock()

        def write(conn: Connection) -> None:
            # a new link replaces the older ones: only the latest e-mail works
            conn.execute(
                update(password_tokens)
                .where(password_tokens.c.user_id == user_id)
                .where(password_tokens.c.used_at.is_(None))
                .where(password_tokens.c.expires_at > now)
                .values(expires_at=now)
            )  # fmt: skip
            conn.execute(
                insert(password_tokens).values(
                    token_hash=_token_hash(token), user_id=user_id, purpose=purpose,
                    expires_at=now + TOKEN_TTLS[purpose], used_at=None, created_at=now,
                )
            )  # fmt: skip

        await self.catalog.run(write)
        return token

    async def by_email(self, email: str) -> Principal | None:
        """A user by (normalised) e-mail address, as a principal."""
        row = await self.catalog.read(
            lambda c: c.execute(select(users).where(users.c.email == email)).mappings().first()
        )
        return (
            None
            if row is None
            else Principal(row["id"], row["role"], row["tenant_id"], row["email"])
        )

    async def token_info(self, token: str) -> dict[str, str | None]:
        """Whom a usable set-password token is for: e-mail, organisation and purpose."""
        now = self.clock()

        def read(conn: Connection) -> dict[str, str | None]:
            row = self._token_row(conn, token, now)
            return {
                "email": row["email"], "organization": row["organisation"],
                "purpose": row["purpose"],
            }  # fmt: skip

        return await self.catalog.read(read)

    @staticmethod
    def _token_row(conn: Connection, token: str, now: dt.datetime) -> RowMapping:
        row = conn.execute(
            select(password_tokens, users.c.email, tenants.c.name.label("organisation"))
            .join(users, users.c.id == password_tokens.c.user_id)
            .outerjoin(tenants, tenants.c.id == users.c.tenant_id)
            .where(password_tokens.c.token_hash == _token_hash(token))
        ).mappings().first()  # fmt: skip
        if row is None:
            raise ValidationError("token", "is not valid")
        if row["used_at"] is not None:
            raise ValidationError("token", "has been used already")
        if row["expires_at"] <= now:
            raise ValidationError("token", "has expired")
        return row

    async def change_password(self, user_id: str, current: str, new: str) -> None:
        """Replace a signed-in user's password (ValidationError naming the field)."""
        row = await self.catalog.read(
            lambda c: c.execute(
                select(users.c.email, users.c.password_hash, tenants.c.name.label("org"))
                .outerjoin(tenants, tenants.c.id == users.c.tenant_id)
                .where(users.c.id == user_id)
            ).mappings().first()
        )  # fmt: skip
        if row is None or not row["password_hash"]:
            raise ValidationError("current_password", "is wrong")
        problems: list[ValidationError] = []
        if not verify_password(current, row["password_hash"]):
            problems.append(ValidationError("current_password", "is wrong"))
        try:
            validate_password(new, email=row["email"], context=[row["org"] or ""])
        except ValueError as exc:
            problems.append(ValidationError("new_password", str(exc)))
        if not problems and new == current:
            problems.append(ValidationError("new_password", "must differ from the current one"))
        if problems:
            raise InvalidFieldsError(problems)
        hashed = hash_password(new)
        await self.catalog.run(
            lambda c: c.execute(
                update(users).where(users.c.id == user_id).values(password_hash=hashed)
            )
        )

    async def superadmins(self) -> list[str]:
        return await self.catalog.read(
            lambda c: [
                str(r[0])
                for r in c.execute(
                    select(users.c.id).where(users.c.role == ROLE_SUPERADMIN).order_by(users.c.id)
                )
            ]
        )

    async def tenant_admins(self, tenant_id: str) -> list[str]:
        return await self.catalog.read(
            lambda c: [
                str(r[0])
                for r in c.execute(
                    select(users.c.id).where(
                        (users.c.tenant_id == tenant_id) & (users.c.role == ROLE_ADMIN)
                    )
                )
            ]
        )

    async def set_password(self, token: str, password: str) -> str:
        """Use a set-password token once; returns the user id (ValidationError otherwise)."""
        now = self.clock()

        def write(conn: Connection) -> str:
            row = self._token_row(conn, token, now)
            try:
                validate_password(password, email=row["email"], context=[row["organisation"] or ""])
            except ValueError as exc:
                raise ValidationError("password", str(exc)) from None
            used = conn.execute(
                update(password_tokens)
                .where(password_tokens.c.token_hash == row["token_hash"])
                .where(password_tokens.c.used_at.is_(None))
                .values(used_at=now)
            )  # fmt: skip
            if used.rowcount != 1:
                raise ValidationError("token", "has been used already")
            conn.execute(
                update(users).where(users.c.id == row["user_id"])
                .values(password_hash=hash_password(password))
            )  # fmt: skip
            return str(row["user_id"])

        return await self.catalog.run(write)
