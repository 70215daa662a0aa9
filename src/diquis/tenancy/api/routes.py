"""HTTP routes of the tenancy application."""

import contextlib
import datetime as dt
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ...identity import (
    SESSION_COOKIE,
    InvalidTokenError,
    Principal,
    issue_token,
    verify_token,
)
from ..application.use_cases import TenantService
from ..domain import (
    AdminEmailTakenError,
    ConflictError,
    DuplicateTenantError,
    ProvisioningStatus,
    Tenant,
    TenantNotFoundError,
    ValidationError,
    validate_email,
)
from ..infrastructure.adapters import RateLimiter
from ..infrastructure.mail import DevMailbox
from ..infrastructure.notifier import HubNotifier
from ..infrastructure.repositories import SqlUsers

SIGNUP_LIMIT_PER_CLIENT = 5  # per hour
SIGNUP_LIMIT_TOTAL = 100  # per hour, every client together


class Services(Protocol):
    """What the routes need from the composition root."""

    secret_key: str
    token_ttl: int
    secure_cookies: bool
    tenant_service: TenantService
    users: SqlUsers
    notifier: HubNotifier
    rate_limiter: RateLimiter
    mailbox: DevMailbox | None
    dev_mode: bool
    provisioning_stuck_after: float


class LoginBody(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    id: str
    email: str | None
    role: str
    tenant_id: str | None


class SetPasswordBody(BaseModel):
    token: str = Field(max_length=200)
    password: str = Field(max_length=256)


class TenantBody(BaseModel):
    name: str = Field(max_length=500)
    admin_email: str = Field(max_length=500)


class SignupBody(BaseModel):
    organization: str = Field(max_length=500)
    email: str = Field(max_length=500)


class TenantOut(BaseModel):
    id: str
    name: str
    slug: str
    status: str
    last_error: str | None
    admin_email: str
    job_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    stuck: bool = Field(
        default=False, description="Provisioning for longer than DIQUIS_PROVISIONING_STUCK_AFTER"
    )


class TenantPage(BaseModel):
    items: list[TenantOut]
    total: int


class StartedOut(BaseModel):
    id: str
    name: str
    status: str
    job_id: str


def tenant_out(tenant: Tenant, stuck_after: float) -> TenantOut:
    now = dt.datetime.now(dt.UTC)
    stuck = (
        tenant.status is ProvisioningStatus.PROVISIONING
        and (now - tenant.updated_at).total_seconds() > stuck_after
    )
    return TenantOut(
        id=tenant.id, name=tenant.name, slug=tenant.slug, status=tenant.status.value,
        last_error=tenant.last_error, admin_email=tenant.admin_email, job_id=tenant.job_id,
        created_at=tenant.created_at, updated_at=tenant.updated_at, stuck=stuck,
    )  # fmt: skip


def unprocessable(error: ValidationError) -> HTTPException:
    """FastAPI's own 422 shape, naming the body field."""
    return HTTPException(
        422,
        detail=[{"loc": ["body", error.field], "msg": error.message, "type": "value_error"}],
    )


def build_router(services: Services) -> APIRouter:
    """The API routes over ``services``."""
    router = APIRouter(prefix="/api")
    bearer = HTTPBearer(auto_error=False)

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
        try:
            return verify_token(services.secret_key, credentials.credentials)
        except InvalidTokenError as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    def superadmin(user: Annotated[Principal, Depends(principal)]) -> Principal:
        if not user.is_superadmin:
            raise HTTPException(403, "only super admins may do this")
        return user

    User = Annotated[Principal, Depends(principal)]
    SuperAdmin = Annotated[Principal, Depends(superadmin)]

    def out(tenant: Tenant) -> TenantOut:
        return tenant_out(tenant, services.provisioning_stuck_after)

    @router.post("/auth/login", response_model=TokenOut, tags=["auth"])
    async def login(body: LoginBody, response: Response) -> TokenOut:
        found = await services.users.authenticate(body.email, body.password)
        if found is None:
            raise HTTPException(401, "wrong e-mail or password")
        token = issue_token(services.secret_key, found, ttl=services.token_ttl)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=services.token_ttl, httponly=True, samesite="lax",
            secure=services.secure_cookies, path="/",
        )  # fmt: skip
        return TokenOut(access_token=token, expires_in=services.token_ttl)

    @router.post("/auth/logout", status_code=204, tags=["auth"])
    async def logout(response: Response) -> Response:
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.status_code = 204
        return response

    @router.post("/auth/set-password", status_code=204, tags=["auth"])
    async def set_password(body: SetPasswordBody) -> Response:
        try:
            await services.users.set_password(body.token, body.password)
        except ValidationError as exc:
            raise unprocessable(exc) from None
        return Response(status_code=204)

    @router.get("/me", response_model=MeOut, tags=["auth"])
    async def me(user: User) -> MeOut:
        current = await services.users.get(user.user_id)
        if current is None:
            raise HTTPException(401, "the user no longer exists")
        return MeOut(
            id=current.user_id, email=current.email, role=current.role,
            tenant_id=current.tenant_id,
        )  # fmt: skip

    @router.post("/tenants", status_code=202, response_model=StartedOut, tags=["tenants"])
    async def create_tenant(body: TenantBody, user: SuperAdmin) -> StartedOut:
        try:
            return await _start(body.name, body.admin_email, user.user_id, "name", "admin_email")
        except AdminEmailTakenError:
            raise unprocessable(ValidationError("admin_email", "is already registered")) from None

    async def _start(
        name: str, email: str, initiator: str | None, name_field: str, email_field: str
    ) -> StartedOut:
        try:
            if await services.users.email_taken(validate_email(email, email_field)):
                raise ValidationError(email_field, "is already registered")
            started = await services.tenant_service.create(
                name, email, initiator, name_field=name_field, email_field=email_field
            )
        except ValidationError as exc:
            raise unprocessable(exc) from None
        except DuplicateTenantError:
            raise unprocessable(ValidationError(name_field, "is taken already")) from None
        return StartedOut(
            id=started.tenant.id, name=started.tenant.name,
            status=started.tenant.status.value, job_id=started.job_id,
        )  # fmt: skip

    @router.get("/tenants", response_model=TenantPage, tags=["tenants"])
    async def list_tenants(
        user: SuperAdmin,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> TenantPage:
        items, total = await services.tenant_service.tenants.list(limit, offset)
        return TenantPage(items=[out(t) for t in items], total=total)

    @router.get("/tenants/{tenant_id}", response_model=TenantOut, tags=["tenants"])
    async def get_tenant(tenant_id: str, user: User) -> TenantOut:
        tenant = await services.tenant_service.tenants.get(tenant_id)
        # a tenant admin may read only their own tenant; others get the same 404
        if tenant is None or not (user.is_superadmin or user.tenant_id == tenant.id):
            raise HTTPException(404, "no such tenant")
        return out(tenant)

    @router.post("/tenants/{tenant_id}/retry", status_code=202, response_model=TenantOut,
                 tags=["tenants"])  # fmt: skip
    async def retry_tenant(tenant_id: str, user: SuperAdmin) -> TenantOut:
        try:
            tenant = await services.tenant_service.retry(tenant_id)
        except TenantNotFoundError:
            raise HTTPException(404, "no such tenant") from None
        except ConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        return out(tenant)

    @router.delete("/tenants/{tenant_id}", status_code=204, tags=["tenants"])
    async def delete_tenant(tenant_id: str, user: SuperAdmin) -> Response:
        """Remove a tenant; its database is dropped only if it carries our marker."""
        try:
            await services.tenant_service.delete(tenant_id)
        except TenantNotFoundError:
            raise HTTPException(404, "no such tenant") from None
        except ConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        return Response(status_code=204)

    @router.post("/signup", status_code=202, tags=["tenants"])
    async def signup(body: SignupBody, request: Request) -> dict[str, str]:
        client = request.client.host if request.client else "unknown"
        allowed = await services.rate_limiter.allow(
            f"signup:{client}", SIGNUP_LIMIT_PER_CLIENT, 3600
        )
        allowed = allowed and await services.rate_limiter.allow(
            "signup:*", SIGNUP_LIMIT_TOTAL, 3600
        )
        if not allowed:
            raise HTTPException(429, "too many sign-ups; try again later",
                                headers={"Retry-After": "3600"})  # fmt: skip
        # lost a race with another sign-up for this address: the same answer as any
        # sign-up (the address's owner hears of it by e-mail, not this client)
        with contextlib.suppress(AdminEmailTakenError):
            await _start(body.organization, body.email, None, "organization", "email")
        return {"message": "Thanks! Check your e-mail for a link to set your password."}

    @router.get("/notifications", tags=["notifications"])
    async def inbox(user: User, unread: bool = False) -> dict[str, Any]:
        return await services.notifier.inbox(user.user_id, unread)

    @router.post("/notifications/{notification_id}/read", status_code=204, tags=["notifications"])
    async def mark_read(notification_id: int, user: User) -> Response:
        if not await services.notifier.mark_read(user.user_id, notification_id):
            raise HTTPException(404, "no such notification")
        return Response(status_code=204)

    if services.mailbox is not None and services.dev_mode:
        mailbox = services.mailbox

        @router.get("/dev/mailbox", tags=["dev"])
        async def dev_mailbox(user: SuperAdmin) -> dict[str, Any]:
            return {"items": mailbox.list()}

    return router
