"""HTTP routes of the tenancy application."""

import datetime as dt
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ...identity import (
    SESSION_COOKIE,
    InvalidTokenError,
    Principal,
    issue_token,
    verify_token,
)
from ..application.accounts import RESET_ANSWER, AccountRecovery
from ..application.signup import PublicSignup
from ..application.use_cases import TenantService
from ..domain import (
    AdminEmailTakenError,
    ConflictError,
    DuplicateTenantError,
    InvalidFieldsError,
    ProvisioningStatus,
    Tenant,
    TenantNotFoundError,
    ValidationError,
    check_all,
    validate_email,
    validate_tenant_name,
)
from ..infrastructure.adapters import RateLimiter
from ..infrastructure.login_throttle import PER_ACCOUNT, PER_CLIENT, LoginThrottle
from ..infrastructure.mail import DevMailbox
from ..infrastructure.notifier import HubNotifier
from ..infrastructure.repositories import SqlUsers
from ..infrastructure.token_deny_list import TokenDenyList
from .errors import errors

SIGNUP_LIMIT_PER_CLIENT = 5  # per hour
SIGNUP_LIMIT_TOTAL = 100  # per hour, every client together
#: the largest id a BIGINT column holds; larger ones name nothing (404, not an overflow)
MAX_ID = 2**63 - 1
MAX_OFFSET = 1_000_000_000
#: no ASCII control characters (PostgreSQL refuses NUL in text; none belongs in these)
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
SIGNUP_ANSWER = "Thanks! Check your e-mail for a link to set your password."


class Services(Protocol):
    """What the routes need from the composition root."""

    secret_key: str
    token_ttl: int
    secure_cookies: bool
    tenant_service: TenantService
    users: SqlUsers
    notifier: HubNotifier
    rate_limiter: RateLimiter
    login_throttle: LoginThrottle
    token_deny_list: TokenDenyList
    signup: PublicSignup
    accounts: AccountRecovery
    mailbox: DevMailbox | None
    dev_mode: bool
    provisioning_stuck_after: float


class LoginBody(BaseModel):
    email: str = Field(max_length=254, pattern=PRINTABLE)
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
    token: str = Field(max_length=200, pattern=PRINTABLE)
    password: str = Field(max_length=256)


class PasswordTokenBody(BaseModel):
    token: str = Field(max_length=200, pattern=PRINTABLE)


class PasswordTokenOut(BaseModel):
    email: str
    organization: str | None
    purpose: str = Field(description="welcome (first password) or reset (forgot password)")


class ForgotPasswordBody(BaseModel):
    email: str = Field(max_length=500)


class ChangePasswordBody(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


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


class MessageOut(BaseModel):
    message: str


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
    """FastAPI's own 422 shape, naming each bad body field (all of them, in form order)."""
    found = error.errors if isinstance(error, InvalidFieldsError) else [error]
    return HTTPException(
        422,
        detail=[
            {"loc": ["body", item.field], "msg": item.message, "type": "value_error"}
            for item in found
        ],
    )


def client_address(request: Request) -> str:
    """The client's address as the server sees it (a trusted proxy's header, if any)."""
    return request.client.host if request.client else "unknown"


def build_router(services: Services) -> APIRouter:
    """The API routes over ``services``."""
    router = APIRouter(prefix="/api", responses=errors(400, 413))
    bearer = HTTPBearer(auto_error=False)

    def refused(why: str) -> HTTPException:
        return HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})

    async def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise refused("not authenticated")
        try:
            found = verify_token(services.secret_key, credentials.credentials)
        except InvalidTokenError as exc:
            raise refused(str(exc)) from None
        if await services.token_deny_list.is_revoked(found.token_id):
            raise refused("token revoked (logged out)")
        return found

    # async, like every dependency here: FastAPI runs a plain ``def`` in a worker thread,
    # a thread hop per request for two attribute reads
    async def superadmin(user: Annotated[Principal, Depends(principal)]) -> Principal:
        if not user.is_superadmin:
            raise HTTPException(403, "only super admins may do this")
        return user

    User = Annotated[Principal, Depends(principal)]
    SuperAdmin = Annotated[Principal, Depends(superadmin)]

    def out(tenant: Tenant) -> TenantOut:
        return tenant_out(tenant, services.provisioning_stuck_after)

    @router.post("/auth/login", response_model=TokenOut, tags=["auth"],
                 responses=errors(401, 429))  # fmt: skip
    async def login(body: LoginBody, request: Request, response: Response) -> TokenOut:
        email = body.email.strip().lower()
        account = PER_ACCOUNT.key(email)
        client = PER_CLIENT.key(client_address(request))
        wait = await services.login_throttle.retry_after([account, client])
        if wait:
            raise HTTPException(
                429, f"too many failed logins; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )  # fmt: skip
        found = await services.users.authenticate(email, body.password)
        if found is None:
            await services.login_throttle.failed([(PER_ACCOUNT, account), (PER_CLIENT, client)])
            raise HTTPException(401, "wrong e-mail or password")
        await services.login_throttle.succeeded(account)
        token = issue_token(services.secret_key, found, ttl=services.token_ttl)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=services.token_ttl, httponly=True, samesite="lax",
            secure=services.secure_cookies, path="/",
        )  # fmt: skip
        return TokenOut(access_token=token, expires_in=services.token_ttl)

    @router.post("/auth/logout", status_code=204, tags=["auth"])
    async def logout(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Response:
        """End the session: the bearer token and the session cookie stop working now."""
        tokens = {request.cookies.get(SESSION_COOKIE, "")}
        if credentials is not None:
            tokens.add(credentials.credentials)
        for token in filter(None, tokens):
            try:
                found = verify_token(services.secret_key, token)
            except InvalidTokenError:
                continue
            if found.token_id and found.expires_at:
                await services.token_deny_list.revoke(found.token_id, found.expires_at)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.post("/auth/set-password", status_code=204, tags=["auth"])
    async def set_password(body: SetPasswordBody) -> Response:
        try:
            await services.users.set_password(body.token, body.password)
        except ValidationError as exc:
            raise unprocessable(exc) from None
        return Response(status_code=204)

    @router.post("/auth/password-token", response_model=PasswordTokenOut, tags=["auth"])
    async def password_token(body: PasswordTokenBody) -> PasswordTokenOut:
        """Whom a set-password link is for (422 if it is not valid, used or expired)."""
        try:
            info = await services.users.token_info(body.token)
        except ValidationError as exc:
            raise unprocessable(exc) from None
        return PasswordTokenOut(
            email=info["email"] or "", organization=info["organization"],
            purpose=info["purpose"] or "welcome",
        )  # fmt: skip

    @router.post("/auth/forgot-password", status_code=202, response_model=MessageOut,
                 tags=["auth"], responses=errors(429))  # fmt: skip
    async def forgot_password(body: ForgotPasswordBody, request: Request) -> MessageOut:
        """The same answer for every well-formed address, known or not; a link by e-mail."""
        try:
            email = services.accounts.validate(body.email)
        except ValidationError as exc:
            raise unprocessable(exc) from None
        client = client_address(request)
        allowed = await services.rate_limiter.allow(
            f"forgot:{client}", SIGNUP_LIMIT_PER_CLIENT, 3600
        )
        allowed = allowed and await services.rate_limiter.allow(
            "forgot:*", SIGNUP_LIMIT_TOTAL, 3600
        )
        if not allowed:
            raise HTTPException(429, "too many requests; try again later",
                                headers={"Retry-After": "3600"})  # fmt: skip
        await services.accounts.request_reset(email)
        return MessageOut(message=RESET_ANSWER)

    @router.post("/auth/change-password", status_code=204, tags=["auth"],
                 responses=errors(401, 429))  # fmt: skip
    async def change_password(body: ChangePasswordBody, user: User) -> Response:
        """Replace the signed-in user's password; the current one must be given."""
        account = PER_ACCOUNT.key(f"change:{user.user_id}")
        wait = await services.login_throttle.retry_after([account])
        if wait:
            raise HTTPException(
                429, f"too many wrong passwords; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )  # fmt: skip
        try:
            await services.users.change_password(
                user.user_id, body.current_password, body.new_password
            )
        except ValidationError as exc:
            found = exc.errors if isinstance(exc, InvalidFieldsError) else [exc]
            if any(item.field == "current_password" for item in found):
                await services.login_throttle.failed([(PER_ACCOUNT, account)])
            raise unprocessable(exc) from None
        await services.login_throttle.succeeded(account)
        return Response(status_code=204)

    @router.get("/me", response_model=MeOut, tags=["auth"], responses=errors(401))
    async def me(user: User) -> MeOut:
        current = await services.users.get(user.user_id)
        if current is None:
            raise HTTPException(401, "the user no longer exists")
        return MeOut(
            id=current.user_id, email=current.email, role=current.role,
            tenant_id=current.tenant_id,
        )  # fmt: skip

    @router.post("/tenants", status_code=202, response_model=StartedOut, tags=["tenants"],
                 responses=errors(401, 403))  # fmt: skip
    async def create_tenant(body: TenantBody, user: SuperAdmin) -> StartedOut:
        try:
            check_all(
                lambda: validate_tenant_name(body.name, "name"),
                lambda: validate_email(body.admin_email, "admin_email"),
            )
            if await services.users.email_taken(validate_email(body.admin_email, "admin_email")):
                raise ValidationError("admin_email", "is already registered")
            started = await services.tenant_service.create(body.name, body.admin_email,
                                                          user.user_id)  # fmt: skip
        except ValidationError as exc:
            raise unprocessable(exc) from None
        except DuplicateTenantError:
            raise unprocessable(ValidationError("name", "is taken already")) from None
        except AdminEmailTakenError:  # reserved by a tenant not yet provisioned
            raise unprocessable(ValidationError("admin_email", "is already registered")) from None
        return StartedOut(
            id=started.tenant.id, name=started.tenant.name,
            status=started.tenant.status.value, job_id=started.job_id,
        )  # fmt: skip

    @router.get("/tenants", response_model=TenantPage, tags=["tenants"],
                responses=errors(401, 403))  # fmt: skip
    async def list_tenants(
        user: SuperAdmin,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        q: Annotated[
            str | None,
            Query(
                max_length=100,
                pattern=PRINTABLE,
                description="Part of the name, slug or admin e-mail (any case)",
            ),
        ] = None,
        status: Annotated[
            ProvisioningStatus | None, Query(description="Only tenants in this status")
        ] = None,
    ) -> TenantPage:
        items, total = await services.tenant_service.tenants.list(
            limit, offset, (q or "").strip() or None, status.value if status else None
        )
        return TenantPage(items=[out(t) for t in items], total=total)

    TenantId = Annotated[str, Path(max_length=36, pattern=r"^[0-9A-Za-z-]+$")]

    @router.get("/tenants/{tenant_id}", response_model=TenantOut, tags=["tenants"],
                responses=errors(401, 404))  # fmt: skip
    async def get_tenant(tenant_id: TenantId, user: User) -> TenantOut:
        tenant = await services.tenant_service.tenants.get(tenant_id)
        # a tenant admin may read only their own tenant; others get the same 404
        if tenant is None or not (user.is_superadmin or user.tenant_id == tenant.id):
            raise HTTPException(404, "no such tenant")
        return out(tenant)

    @router.post("/tenants/{tenant_id}/retry", status_code=202, response_model=TenantOut,
                 tags=["tenants"], responses=errors(401, 403, 404, 409))  # fmt: skip
    async def retry_tenant(tenant_id: TenantId, user: SuperAdmin) -> TenantOut:
        try:
            tenant = await services.tenant_service.retry(tenant_id)
        except TenantNotFoundError:
            raise HTTPException(404, "no such tenant") from None
        except ConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        return out(tenant)

    @router.post("/tenants/{tenant_id}/resend-welcome", status_code=202,
                 response_model=MessageOut, tags=["tenants"],
                 responses=errors(401, 403, 404, 409))  # fmt: skip
    async def resend_welcome(tenant_id: TenantId, user: SuperAdmin) -> MessageOut:
        """E-mail the tenant's admin a new set-password link; older links stop working."""
        try:
            await services.accounts.resend_welcome(tenant_id)
        except TenantNotFoundError:
            raise HTTPException(404, "no such tenant") from None
        except ConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        return MessageOut(message="A new welcome e-mail is on its way.")

    @router.delete("/tenants/{tenant_id}", status_code=204, tags=["tenants"],
                   responses=errors(401, 403, 404, 409))  # fmt: skip
    async def delete_tenant(tenant_id: TenantId, user: SuperAdmin) -> Response:
        """Remove a tenant; its database is dropped only if it carries our marker."""
        try:
            await services.tenant_service.delete(tenant_id)
        except TenantNotFoundError:
            raise HTTPException(404, "no such tenant") from None
        except ConflictError as exc:
            raise HTTPException(409, str(exc)) from None
        return Response(status_code=204)

    @router.post("/signup", status_code=202, response_model=MessageOut, tags=["tenants"],
                 responses=errors(429))  # fmt: skip
    async def signup(body: SignupBody, request: Request) -> MessageOut:
        """Every well-formed sign-up gets this same answer; only format errors get 422."""
        try:
            services.signup.validate(body.organization, body.email)
        except ValidationError as exc:
            raise unprocessable(exc) from None
        # only valid requests count, so junk cannot use up the budget of real sign-ups
        client = client_address(request)
        allowed = await services.rate_limiter.allow(
            f"signup:{client}", SIGNUP_LIMIT_PER_CLIENT, 3600
        )
        allowed = allowed and await services.rate_limiter.allow(
            "signup:*", SIGNUP_LIMIT_TOTAL, 3600
        )
        if not allowed:
            raise HTTPException(429, "too many sign-ups; try again later",
                                headers={"Retry-After": "3600"})  # fmt: skip
        await services.signup.submit(body.organization, body.email)
        return MessageOut(message=SIGNUP_ANSWER)

    @router.get("/notifications", tags=["notifications"], responses=errors(401))
    async def inbox(user: User, unread: bool = False) -> dict[str, Any]:
        return await services.notifier.inbox(user.user_id, unread)

    @router.post("/notifications/{notification_id}/read", status_code=204,
                 tags=["notifications"], responses=errors(401, 404))  # fmt: skip
    async def mark_read(
        notification_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: User
    ) -> Response:
        if not await services.notifier.mark_read(user.user_id, notification_id):
            raise HTTPException(404, "no such notification")
        return Response(status_code=204)

    if services.mailbox is not None and services.dev_mode:
        mailbox = services.mailbox

        @router.get("/dev/mailbox", tags=["dev"], responses=errors(401, 403))
        async def dev_mailbox(user: SuperAdmin) -> dict[str, Any]:
            return {"items": mailbox.list()}

    return router
