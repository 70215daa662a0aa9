"""The dashboard as one ASGI app: routing, authorization, CSRF, actions, live feed, headers."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.resources
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from ..jobs import JobEngine, JobError
from . import pages
from .authorization import (
    DEFAULT_SESSION_COOKIE,
    Access,
    AuthorizationFilter,
    LocalRequestsOnly,
)
from .csrf import CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER, CsrfTokens
from .layout import STATE_SLUGS, Context, bare_page, page
from .live import LiveFeed, sse_stream
from .markup import Html, esc
from .views import JobFilters

FLASH_COOKIE = "diquis_flash"

#: the strict policy: scripts and styles from the dashboard's own files only
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
STATIC_TYPES = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}

#: job ids are BIGINTs: a larger number names no job (404), it must not overflow the driver
MAX_JOB_ID = 2**63 - 1

ReadOnly = bool | Callable[[Request], bool]
Endpoint = Callable[[Request], Awaitable[Response]]


def _load_static() -> dict[str, bytes]:
    root = importlib.resources.files("diquis.dashboard").joinpath("static")
    return {name: root.joinpath(name).read_bytes() for name in STATIC_TYPES}


class Dashboard:
    """The jobs dashboard: an ASGI app to mount at ``base_path`` (see :func:`create_dashboard`)."""

    def __init__(
        self,
        engine: JobEngine,
        *,
        authorization: AuthorizationFilter | Sequence[AuthorizationFilter] | None = None,
        read_only: ReadOnly = False,
        login_url: str = "/api/auth/login",
        base_path: str = "/hangfire",
        csrf_secret: str | None = None,
        session_cookie: str = DEFAULT_SESSION_COOKIE,
        dead_server_after: float = 15.0,
        tag_links: Mapping[str, str] | None = None,
        app_path: str | None = None,
    ) -> None:
        self.engine = engine
        self.tag_links = {
            str(prefix): _checked_link(template, f"tag_links[{prefix!r}]")
            for prefix, template in (tag_links or {}).items()
        }
        self.app_path = _checked_link(app_path, "app_path") if app_path is not None else None
        if authorization is None:
            self.filters: list[AuthorizationFilter] = [LocalRequestsOnly()]
        elif callable(authorization):
            self.filters = [authorization]
        else:
            self.filters = list(authorization)
        self.read_only = read_only
        self.login_url = login_url
        self.base = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.csrf = CsrfTokens(csrf_secret, session_cookie=session_cookie)
        self.session_cookie = session_cookie
        self.dead_server_after = dead_server_after
        self.feed = LiveFeed(engine.state_changes)
        self.static = _load_static()
        self.asset_version = hashlib.sha256(b"".join(self.static.values())).hexdigest()[:12]
        self.app = Starlette(
            routes=[
                Route("/static/{name}", self.static_file),
                Route("/login", self.login_page),
                Route("/", self._guard(self.overview, "page")),
                Route("/jobs/{job_id:int}", self._guard(self.job, "page")),
                Route("/jobs/{slug}", self._guard(self.jobs, "page")),
                Route("/retries", self._guard(self.retries, "page")),
                Route("/recurring", self._guard(self.recurring, "page")),
                Route("/servers", self._guard(self.servers, "page")),
                Route("/batches", self._guard(self.batches, "page")),
                Route("/batches/{batch_id:int}", self._guard(self.batch, "page")),
                Route("/api/stats", self._guard(self.api_stats, "json")),
                Route("/api/jobs/{job_id:int}", self._guard(self.api_job, "json")),
                Route("/events", self._guard(self.events, "json")),
                Route("/actions/{action}", self._guard(self.action, "page"), methods=["POST"]),
                Route("/logout", self._guard(self.logout, "page"), methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request, adding the security headers to every response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secured)

    # -- authorization -------------------------------------------------------------

    async def authorize(self, request: Request) -> Access:
        """Every filter's verdict, stopping at the first that does not allow."""
        for check in self.filters:
            verdict: Any = check(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict is True:
                verdict = Access.ALLOW
            elif verdict is False or not isinstance(verdict, Access):
                verdict = Access.FORBIDDEN
            if verdict is not Access.ALLOW:
                denied: Access = verdict
                return denied
        return Access.ALLOW

    def _guard(self, endpoint: Endpoint, kind: str) -> Endpoint:
        async def guarded(request: Request) -> Response:
            verdict = await self.authorize(request)
            if verdict is Access.ALLOW:
                return await endpoint(request)
            if kind == "json":
                status = 401 if verdict is Access.UNAUTHENTICATED else 403
                error = "unauthenticated" if status == 401 else "forbidden"
                return JSONResponse({"error": error}, status_code=status)
            if verdict is Access.UNAUTHENTICATED:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method != "GET":
                    here = self.base + "/"
                target = f"{self.base}/login?next={quote(here, safe='')}"
                return RedirectResponse(target, status_code=303)
            return await self._forbidden(request)

        guarded.__name__ = endpoint.__name__
        return guarded

    async def _forbidden(self, request: Request) -> Response:
        ctx = self._bare_context(request)
        principal = getattr(request.state, "principal", None)
        who = (
            f"You are signed in as {principal.email or principal.user_id} ({principal.role})."
            if principal is not None
            else "Your request is not allowed here."
        )
        body = Html(
            '<div class="card-box"><h1>403 — Forbidden</h1>'
            f"<p>The jobs dashboard is for super admins only. {esc(who)}</p>"
            f'<p><a class="btn" href="{esc(ctx.url("/login"))}">Log in as someone else</a></p>'
            "</div>"
        )
        return HTMLResponse(bare_page(ctx, "Forbidden", body), status_code=403)

    # -- page plumbing -------------------------------------------------------------

    def _is_read_only(self, request: Request) -> bool:
        return self.read_only(request) if callable(self.read_only) else bool(self.read_only)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.engine.now(), dt.UTC)

    def _bare_context(self, request: Request, token: str = "") -> Context:
        rel = request.url.path[len(self.base) :] if request.url.path.startswith(self.base) else "/"
        return Context(
            base=self.base,
            path=rel or "/",
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            csrf_token=token,
            read_only=self._is_read_only(request),
            now=self._now(),
            asset_version=self.asset_version,
            tag_links=self.tag_links,
            app_path=self.app_path,
        )

    async def _render(
        self, request: Request, build: Callable[[Context], pages.Rendered]
    ) -> Response:
        token, fresh = self.csrf.token(request)
        ctx = self._bare_context(request, token)
        principal = getattr(request.state, "principal", None)
        if principal is not None:
            ctx.user = principal.email or principal.user_id
            ctx.logout = True
        ctx.flash = request.cookies.get(FLASH_COOKIE)

        def work() -> tuple[pages.Rendered, dict[str, int]]:
            ctx.counts = pages.nav_counts(self.engine)
            return build(ctx), ctx.counts

        rendered, _ = await run_in_threadpool(work)
        html = page(ctx, rendered)
        response = HTMLResponse(html, status_code=rendered.status)
        if fresh:
            self._set_csrf_cookie(request, response, token)
        if ctx.flash:
            response.delete_cookie(FLASH_COOKIE, path=self.base or "/")
        return response

    def _set_csrf_cookie(self, request: Request, response: Response, token: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path=self.base or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    # -- pages ---------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        """Counters, throughput graphs, servers."""
        range_ = "7d" if request.query_params.get("range") == "7d" else "24h"
        return await self._render(
            request, lambda ctx: pages.overview(self.engine, ctx, range_, self.dead_server_after)
        )

    async def jobs(self, request: Request) -> Response:
        """One state's jobs."""
        state = STATE_SLUGS.get(request.path_params["slug"])
        if state is None:
            return PlainTextResponse("Not found", status_code=404)
        filters = JobFilters.parse(request.query_params)
        return await self._render(
            request, lambda ctx: pages.jobs_by_state(self.engine, ctx, state, filters)
        )

    async def job(self, request: Request) -> Response:
        """One job."""
        job_id = int(request.path_params["job_id"])
        if job_id > MAX_JOB_ID:
            return PlainTextResponse(f"Job #{job_id} does not exist.", status_code=404)
        return await self._render(request, lambda ctx: pages.job_page(self.engine, ctx, job_id))

    async def retries(self, request: Request) -> Response:
        """Jobs waiting for their next attempt."""
        page_raw = request.query_params.get("page")
        return await self._render(request, lambda ctx: pages.retries(self.engine, ctx, page_raw))

    async def recurring(self, request: Request) -> Response:
        """Recurring jobs."""
        return await self._render(request, lambda ctx: pages.recurring(self.engine, ctx))

    async def servers(self, request: Request) -> Response:
        """Job servers."""
        return await self._render(
            request, lambda ctx: pages.servers(self.engine, ctx, self.dead_server_after)
        )

    async def batches(self, request: Request) -> Response:
        """Batches, newest first."""
        page_raw = request.query_params.get("page")
        return await self._render(request, lambda ctx: pages.batches(self.engine, ctx, page_raw))

    async def batch(self, request: Request) -> Response:
        """One batch."""
        batch_id = int(request.path_params["batch_id"])
        if batch_id > MAX_JOB_ID:
            return PlainTextResponse(f"Batch #{batch_id} does not exist.", status_code=404)
        page_raw = request.query_params.get("page")
        return await self._render(
            request, lambda ctx: pages.batch_page(self.engine, ctx, batch_id, page_raw)
        )

    async def login_page(self, request: Request) -> Response:
        """The log-in form; the browser script posts it to the login API as JSON."""
        ctx = self._bare_context(request)
        next_url = self._safe_next(request.query_params.get("next"))
        body = Html(
            '<form class="card-box login" id="login-form" method="post" '
            f'data-login-url="{esc(self.login_url)}" data-next="{esc(next_url)}">'
            "<h1>Log in</h1>"
            '<p class="muted">The jobs dashboard is for super admins.</p>'
            '<label for="email">E-mail</label>'
            '<input id="email" name="email" type="email" autocomplete="username" required>'
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" '
            'autocomplete="current-password" required>'
            '<p class="form-error" id="login-error" role="alert" hidden></p>'
            '<button class="btn btn-primary" type="submit">Log in</button>'
            "<noscript><p>Logging in needs JavaScript.</p></noscript>"
            "</form>"
        )
        return HTMLResponse(bare_page(ctx, "Log in", body))

    def _safe_next(self, raw: str | None) -> str:
        """A same-dashboard path to return to (anything else: the overview)."""
        home = self.base + "/"
        if not raw or (not raw.startswith(self.base + "/") and raw != self.base):
            return home
        if raw.startswith("//") or "\\" in raw or any(ord(c) < 32 for c in raw):
            return home
        return raw

    async def static_file(self, request: Request) -> Response:
        """The dashboard's CSS and script (package data)."""
        name = request.path_params["name"]
        if name not in self.static:
            return PlainTextResponse("Not found", status_code=404)
        return Response(
            self.static[name],
            media_type=STATIC_TYPES[name],
            headers={"cache-control": "public, max-age=86400"},
        )

    # -- JSON and live -------------------------------------------------------------

    async def api_stats(self, request: Request) -> Response:
        """Counters per state, retries, recurring jobs and servers."""
        data = await run_in_threadpool(pages.stats, self.engine, self.engine.now())
        return JSONResponse(data)

    async def api_job(self, request: Request) -> Response:
        """One job's state, for scripts."""
        job_id = int(request.path_params["job_id"])
        job = (
            None
            if job_id > MAX_JOB_ID
            else await run_in_threadpool(self.engine.monitoring.get_job, job_id)
        )
        if job is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(
            {
                "id": job.id,
                "target": job.target,
                "state": job.state.value,
                "reason": job.reason,
                "retry_count": job.retry_count,
                "queue": job.queue,
            }
        )

    async def events(self, request: Request) -> Response:
        """The engine's cross-process state changes as server-sent events."""
        return StreamingResponse(
            sse_stream(self.feed),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- actions -------------------------------------------------------------------

    async def action(self, request: Request) -> Response:
        """Requeue, delete, trigger or remove: POST only, CSRF-checked, never in read-only."""
        name = request.path_params["action"]
        handler = self._actions().get(name)
        if handler is None:
            return PlainTextResponse("Unknown action", status_code=404)
        if self._is_read_only(request):
            return self._refuse(request, "The dashboard is read-only.")
        form = await _read_form(request)
        if not self.csrf.check(
            request, _field(form, CSRF_FIELD) or request.headers.get(CSRF_HEADER)
        ):
            return self._refuse(request, "Missing or invalid CSRF token; reload the page.")
        ids = form.get("id") or form.get("ids") or []
        if not ids:
            return self._done(request, form, "Nothing selected.", 0, [])
        if name in ("requeue", "delete") and not all(
            i.isdigit() and int(i) <= MAX_JOB_ID for i in ids
        ):
            return JSONResponse(
                {"error": f"job ids must be whole numbers up to {MAX_JOB_ID}"}, status_code=400
            )
        done, errors = await run_in_threadpool(_apply, handler, ids)
        return self._done(request, form, _summary(name, done, errors), done, errors)

    def _actions(self) -> dict[str, Callable[[str], object]]:
        engine = self.engine
        return {
            "requeue": lambda i: engine.requeue(int(i), "Requeued from the dashboard"),
            "delete": lambda i: engine.delete(int(i), "Deleted from the dashboard"),
            "trigger": engine.recurring.trigger,
            "remove": engine.recurring.remove,
        }

    def _refuse(self, request: Request, why: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": why}, status_code=403)
        return PlainTextResponse(why, status_code=403)

    def _done(
        self, request: Request, form: Form, message: str, done: int, errors: list[str]
    ) -> Response:
        if _wants_json(request):
            return JSONResponse({"message": message, "done": done, "errors": errors})
        response = RedirectResponse(self._safe_next(_field(form, "next")), status_code=303)
        response.set_cookie(
            FLASH_COOKIE,
            message[:300],
            max_age=60,
            path=self.base or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """Forget the session cookie (CSRF-checked) and go to the log-in page."""
        form = await _read_form(request)
        if not self.csrf.check(request, _field(form, CSRF_FIELD)):
            return self._refuse(request, "Missing or invalid CSRF token; reload the page.")
        response = RedirectResponse(f"{self.base}/login", status_code=303)
        response.delete_cookie(self.session_cookie, path="/")
        response.delete_cookie(CSRF_COOKIE, path=self.base or "/")
        return response


def _checked_link(url: str, what: str) -> str:
    """``url`` if it is a path on this site or an http(s) URL (no ``javascript:`` and such)."""
    text = str(url).strip()
    ok = (text.startswith("/") and not text.startswith("//")) or text.startswith(
        ("http://", "https://")
    )
    if not ok or any(ord(c) < 32 or c in "\\<>\"'` " for c in text):
        raise ValueError(f"{what} must be a path starting with / or an http(s) URL, not {url!r}")
    return text


Form = dict[str, list[str]]
MAX_FORM_BYTES = 256 * 1024


async def _read_form(request: Request) -> Form:
    """An url-encoded form body (what the dashboard's forms send); anything else is empty."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=2000)


def _field(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _apply(handler: Callable[[str], object], ids: list[str]) -> tuple[int, list[str]]:
    done = 0
    errors: list[str] = []
    for item in dict.fromkeys(ids):
        try:
            result = handler(item)
        except JobError as exc:
            errors.append(str(exc))
            continue
        if result is False:
            errors.append(f"{item} does not exist")
        else:
            done += 1
    return done, errors


def _summary(action: str, done: int, errors: list[str]) -> str:
    noun = "recurring job" if action in ("trigger", "remove") else "job"
    verb = {
        "requeue": "Requeued",
        "delete": "Deleted",
        "trigger": "Triggered",
        "remove": "Removed",
    }[action]
    text = f"{verb} {done} {noun}{'' if done == 1 else 's'}."
    if errors:
        text += f" {len(errors)} skipped: " + "; ".join(errors[:3])
    return text


def create_dashboard(
    engine: JobEngine,
    *,
    authorization: AuthorizationFilter | Sequence[AuthorizationFilter] | None = None,
    read_only: ReadOnly = False,
    login_url: str = "/api/auth/login",
    base_path: str = "/hangfire",
    csrf_secret: str | None = None,
    session_cookie: str = DEFAULT_SESSION_COOKIE,
    dead_server_after: float = 15.0,
    tag_links: Mapping[str, str] | None = None,
    app_path: str | None = None,
) -> Dashboard:
    """The jobs dashboard over ``engine``, an ASGI app to mount at ``base_path``.

    ``authorization``: one filter or several (all must allow); none means local requests
    only. ``read_only`` (or a function of the request) hides and refuses every action.
    ``csrf_secret`` signs CSRF tokens; give the same one to every process behind a load
    balancer (default: random per process). ``dead_server_after``: seconds without a
    heartbeat before a server is marked dead. ``tag_links`` map a tag prefix to a page of
    the host app, ``{value}`` standing for the tag's value (URL-encoded): ``{"tenant":
    "/tenants?q={value}"}`` links ``tenant:acme`` there. ``app_path`` (Hangfire's AppPath):
    where "Back to app" goes (none: no link).
    """
    return Dashboard(
        engine,
        authorization=authorization,
        read_only=read_only,
        login_url=login_url,
        base_path=base_path,
        csrf_secret=csrf_secret,
        session_cookie=session_cookie,
        dead_server_after=dead_server_after,
        tag_links=tag_links,
        app_path=app_path,
    )


__all__ = ["Dashboard", "create_dashboard"]
