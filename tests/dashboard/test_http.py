"""The dashboard over HTTP: pages on both backends, authorization, CSRF, read-only, escaping."""

from __future__ import annotations

import importlib.resources
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from diquis.dashboard import create_dashboard
from diquis.identity import ROLE_SUPERADMIN, SESSION_COOKIE, Principal
from diquis.jobs import JobEngine, State

from .conftest import SUPERADMIN, TENANT_ADMIN, XSS, Seeded, csrf_token, make_app, token_for

PAGES = [
    "/hangfire/",
    "/hangfire/?range=7d",
    "/hangfire/jobs/enqueued",
    "/hangfire/jobs/scheduled",
    "/hangfire/jobs/processing",
    "/hangfire/jobs/succeeded",
    "/hangfire/jobs/failed",
    "/hangfire/jobs/deleted",
    "/hangfire/jobs/awaiting",
    "/hangfire/retries",
    "/hangfire/recurring",
    "/hangfire/servers",
]


def superadmin(engine: JobEngine, **options: object) -> TestClient:
    client = TestClient(make_app(engine, **options), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, token_for(SUPERADMIN))
    return client


def test_every_page_renders(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert '<span>Diquis</span><span class="sub">Jobs</span>' in response.text

    overview = client.get("/hangfire/").text
    assert 'data-count="Failed">1<' in overview
    assert 'id="live-chart"' in overview
    assert 'class="bar-ok"' in overview  # the succeeded runs of this hour
    assert "web-2:200:dead" in overview

    lists = {
        "enqueued": seeded.enqueued,
        "scheduled": seeded.scheduled,
        "processing": seeded.processing,
        "succeeded": seeded.succeeded,
        "failed": seeded.failed,
        "deleted": seeded.deleted,
        "awaiting": seeded.awaiting,
    }
    for slug, job_id in lists.items():
        assert f'href="/hangfire/jobs/{job_id}"' in client.get(f"/hangfire/jobs/{slug}").text, slug

    critical = client.get("/hangfire/jobs/enqueued", params={"queue": "critical"}).text
    assert f"/hangfire/jobs/{seeded.enqueued}" in critical
    assert "/hangfire/jobs/enqueued?queue=critical" in critical

    retries = client.get("/hangfire/retries").text
    assert f"/hangfire/jobs/{seeded.retrying}" in retries
    assert "ValueError: flaky 5" in retries

    recurring = client.get("/hangfire/recurring").text
    assert "nightly-report" in recurring and "0 3 * * *" in recurring
    assert "Europe/Amsterdam" in recurring
    assert f"/hangfire/jobs/{seeded.recurring_job}" in recurring

    servers = client.get("/hangfire/servers").text
    assert "web-1:100:live" in servers and "Alive" in servers
    assert "web-2:200:dead" in servers and "Dead" in servers
    assert f"/hangfire/jobs/{seeded.processing}" in servers  # the live server's running job


def test_job_page_shows_everything(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine)
    failed = client.get(f"/hangfire/jobs/{seeded.failed}").text
    assert "tenancy.provision_tenant" in failed
    assert "builtins.RuntimeError" in failed
    assert "Traceback (most recent call last)" in failed
    assert "tenant:acme" in failed
    assert "Continuations" in failed and f"/hangfire/jobs/{seeded.continuation}" in failed
    assert "State history" in failed and "Latency" in failed and "Duration" in failed
    assert "Requeue" in failed and "/hangfire/actions/requeue" in failed

    child = client.get(f"/hangfire/jobs/{seeded.continuation}").text
    assert f'href="/hangfire/jobs/{seeded.failed}"' in child and "Parent" in child
    assert f"Parent job {seeded.failed} is Failed" in child

    scheduled = client.get(f"/hangfire/jobs/{seeded.scheduled}").text
    assert "report:daily" in scheduled  # unique key
    assert "Enqueue now" in scheduled

    succeeded = client.get(f"/hangfire/jobs/{seeded.succeeded}").text
    assert "Result" in succeeded and "42" in succeeded

    processing = client.get(f"/hangfire/jobs/{seeded.processing}").text
    assert "Cancel and delete" in processing

    assert client.get("/hangfire/jobs/987654").status_code == 404
    assert client.get("/hangfire/jobs/nonsense").status_code == 404


def test_search_by_tag_id_and_target(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine)
    by_tag = client.get("/hangfire/jobs/failed", params={"q": "tenant:acme"}).text
    assert f"/hangfire/jobs/{seeded.failed}" in by_tag
    by_target = client.get("/hangfire/jobs/succeeded", params={"q": "demo.o"}).text
    assert f"/hangfire/jobs/{seeded.succeeded}" in by_target
    assert f"/hangfire/jobs/{seeded.continuation}" in by_target
    by_id = client.get("/hangfire/jobs/succeeded", params={"q": str(seeded.succeeded)}).text
    assert f"/hangfire/jobs/{seeded.succeeded}" in by_id
    assert f'/hangfire/jobs/{seeded.continuation}"' not in by_id
    nothing = client.get("/hangfire/jobs/failed", params={"q": "tenant:nobody"}).text
    assert "No failed jobs match these filters." in nothing


def test_job_lists_filter_by_queue_tag_time_and_page_size(
    engine: JobEngine, seeded: Seeded
) -> None:
    """Item 9: partial tag search, an exact tag, a queue, a time range, a page size."""
    client = superadmin(engine)

    def ids(path: str, **params: str) -> set[int]:
        html = client.get(path, params=params).text
        return {int(n) for n in re.findall(r'<tr data-key="(\d+)"', html)}

    assert ids("/hangfire/jobs/failed", q="tenant:ac") == {seeded.failed}  # part of a tag
    assert ids("/hangfire/jobs/succeeded", q="glob") == {seeded.succeeded}
    assert ids("/hangfire/jobs/succeeded", tag="tenant:globex") == {seeded.succeeded}
    assert ids("/hangfire/jobs/succeeded", tag="tenant:glob") == set()  # exact
    assert ids("/hangfire/jobs/enqueued", queue="critical") == {seeded.enqueued}
    assert ids("/hangfire/jobs/enqueued", queue="default") == set()
    assert seeded.processing in ids("/hangfire/jobs/processing", queue="slow", range="1h")
    everything = ids("/hangfire/jobs/succeeded", range="24h")
    assert len(everything) >= 2
    assert len(ids("/hangfire/jobs/succeeded", size="20", range="bogus")) == len(everything)
    later = engine.now() + 60
    assert engine.monitoring.list_jobs(state=State.SUCCEEDED, since=later) == []
    assert engine.monitoring.count_jobs(state=State.SUCCEEDED, since=later) == 0

    page = client.get("/hangfire/jobs/succeeded", params={"size": "20", "tag": "x"}).text
    assert '<option value="20" selected>' in page
    assert 'name="tag" value="x"' in page
    assert "Clear filters" in page
    # the pager keeps the filters
    for n in range(22):
        engine.enqueue("demo.ok", n, tags=["tenant:bulk"])
    listing = client.get("/hangfire/jobs/enqueued", params={"size": "20", "tag": "tenant:bulk"})
    assert len(re.findall(r'<tr data-key="', listing.text)) == 20
    assert "page=2&amp;tag=tenant%3Abulk&amp;size=20" in listing.text


def test_lists_show_a_readable_target_and_tags_linking_to_the_app(
    engine: JobEngine, seeded: Seeded
) -> None:
    """Item 9: no raw argument tuples; tags link to the list filtered by them and to the app."""
    client = superadmin(engine, tag_links={"tenant": "/tenants?q={value}"}, app_path="/")
    engine.enqueue("demo.ok", 1, tags=["tenant:a b&c/<x>"])
    html = client.get("/hangfire/jobs/failed").text
    assert ">Provision tenant</a>" in html
    assert "tenancy.provision_tenant" in html
    assert "(7, " not in html and "could not create" not in html.split("<tbody>")[1][:200]
    assert 'href="/hangfire/jobs/failed?tag=tenant%3Aacme"' in html
    assert 'href="/tenants?q=acme"' in html
    assert 'aria-label="Open tenant acme in the app"' in html
    assert '<a href="/" class="app-link">← Back to app</a>' in html
    odd = client.get("/hangfire/jobs/enqueued").text
    assert 'href="/tenants?q=a%20b%26c%2F%3Cx%3E"' in odd
    # no links without a configuration
    assert "/tenants?q=" not in superadmin(engine).get("/hangfire/jobs/failed").text
    assert "app-link" not in superadmin(engine).get("/hangfire/jobs/failed").text


@pytest.mark.parametrize(
    "bad",
    ["javascript:alert(1)", "//evil.test/{value}", "data:text/html,x", '/x"onmouseover=1', ""],
)
def test_tag_links_and_app_path_must_be_paths_or_http(engine: JobEngine, bad: str) -> None:
    with pytest.raises(ValueError, match="must be a path"):
        create_dashboard(engine, tag_links={"tenant": bad})
    with pytest.raises(ValueError, match="must be a path"):
        create_dashboard(engine, app_path=bad)


def test_json_endpoints(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine)
    stats = client.get("/hangfire/api/stats").json()
    assert stats["counts"]["Failed"] == 1
    assert stats["counts"]["retries"] == 1
    assert stats["counts"]["servers"] == 2
    job = client.get(f"/hangfire/api/jobs/{seeded.failed}").json()
    assert job["state"] == "Failed" and job["target"] == "tenancy.provision_tenant"
    assert client.get("/hangfire/api/jobs/987654").status_code == 404


def test_authorization(engine: JobEngine, seeded: Seeded) -> None:
    anonymous = TestClient(make_app(engine), follow_redirects=False)
    page = anonymous.get("/hangfire/jobs/failed?q=x")
    assert page.status_code == 303
    location = urlsplit(page.headers["location"])
    assert location.path == "/hangfire/login"
    assert parse_qs(location.query)["next"] == ["/hangfire/jobs/failed?q=x"]
    for path in PAGES:
        assert anonymous.get(path).status_code == 303, path
    assert anonymous.get("/hangfire/api/stats").status_code == 401
    assert anonymous.get(f"/hangfire/api/jobs/{seeded.failed}").status_code == 401
    assert anonymous.get("/hangfire/events").status_code == 401
    posted = anonymous.post("/hangfire/actions/requeue", data={"id": str(seeded.failed)})
    assert posted.status_code == 303 and "/hangfire/login" in posted.headers["location"]
    assert anonymous.get("/hangfire/login").status_code == 200
    assert anonymous.get("/hangfire/static/dashboard.css").status_code == 200

    forged = TestClient(make_app(engine), follow_redirects=False)
    forged.cookies.set(SESSION_COOKIE, token_for(SUPERADMIN)[:-4] + "AAAA")
    assert forged.get("/hangfire/").status_code == 303

    admin = TestClient(make_app(engine), follow_redirects=False)
    admin.cookies.set(SESSION_COOKIE, token_for(TENANT_ADMIN))
    for path in PAGES:
        assert admin.get(path).status_code == 403, path
    assert "super admins only" in admin.get("/hangfire/").text
    assert admin.get("/hangfire/api/stats").status_code == 403
    assert admin.get("/hangfire/events").status_code == 403
    assert admin.post("/hangfire/actions/requeue", data={"id": "1"}).status_code == 403
    assert engine.get(seeded.failed).state is State.FAILED

    client = superadmin(engine)
    assert client.get("/hangfire/").status_code == 200
    bearer = TestClient(make_app(engine))
    headers = {"authorization": f"Bearer {token_for(SUPERADMIN)}"}
    assert bearer.get("/hangfire/api/stats", headers=headers).status_code == 200


def test_default_is_local_requests_only(engine: JobEngine, seeded: Seeded) -> None:
    dashboard = create_dashboard(engine)
    for host, status in [
        ("127.0.0.1", 200),
        ("::1", 200),
        ("203.0.113.9", 403),
        ("10.0.0.5", 403),
        ("testclient", 403),
    ]:
        client = TestClient(dashboard, client=(host, 50000), root_path="/hangfire")
        assert client.get("/").status_code == status, host
        assert client.get("/api/stats").status_code == status, host


def test_csrf(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine)
    page = client.get(f"/hangfire/jobs/{seeded.failed}")
    token = csrf_token(page.text)
    target = {"id": str(seeded.failed), "next": f"/hangfire/jobs/{seeded.failed}"}

    assert client.post("/hangfire/actions/requeue", data=target).status_code == 403
    bad = client.post("/hangfire/actions/requeue", data={**target, "csrf_token": token + "x"})
    assert bad.status_code == 403
    forged = client.post("/hangfire/actions/requeue", data={**target, "csrf_token": "abc.def"})
    assert forged.status_code == 403
    assert engine.get(seeded.failed).state is State.FAILED

    # a token another session got from the same dashboard does not carry over
    other = TestClient(client.app, follow_redirects=False)
    other.cookies.set(SESSION_COOKIE, token_for(Principal("3", ROLE_SUPERADMIN, None)))
    other_token = csrf_token(other.get("/hangfire/jobs/failed").text)
    stolen = client.post("/hangfire/actions/requeue", data={**target, "csrf_token": other_token})
    assert stolen.status_code == 403
    assert engine.get(seeded.failed).state is State.FAILED

    # GET never acts
    assert client.get("/hangfire/actions/requeue", params=target).status_code == 405

    done = client.post("/hangfire/actions/requeue", data={**target, "csrf_token": token})
    assert done.status_code == 303
    assert done.headers["location"] == f"/hangfire/jobs/{seeded.failed}"
    assert engine.get(seeded.failed).state is State.ENQUEUED
    assert "Requeued 1 job." in client.get(done.headers["location"]).text


def test_csrf_token_is_bound_to_the_session(engine: JobEngine, seeded: Seeded) -> None:
    first = superadmin(engine)
    token = csrf_token(first.get("/hangfire/jobs/failed").text)
    # same browser (same CSRF cookie), but the session changed: the old token is void
    first.cookies.set(SESSION_COOKIE, token_for(Principal("9", ROLE_SUPERADMIN, None)))
    refused = first.post(
        "/hangfire/actions/delete", data={"id": str(seeded.failed), "csrf_token": token}
    )
    assert refused.status_code == 403
    assert engine.get(seeded.failed).state is State.FAILED


def test_bulk_and_recurring_actions(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine)
    token = csrf_token(client.get("/hangfire/jobs/succeeded").text)
    bulk = client.post(
        "/hangfire/actions/delete",
        data={"ids": [str(seeded.succeeded), str(seeded.failed)], "csrf_token": token},
        headers={"accept": "application/json"},
    )
    assert bulk.json() == {"message": "Deleted 2 jobs.", "done": 2, "errors": []}
    assert engine.get(seeded.succeeded).state is State.DELETED
    assert engine.get(seeded.failed).state is State.DELETED

    again = client.post(
        "/hangfire/actions/requeue",
        data={"ids": [str(seeded.succeeded), str(seeded.processing)], "csrf_token": token},
        headers={"accept": "application/json"},
    ).json()
    assert again["done"] == 1 and len(again["errors"]) == 1 and "Processing" in again["errors"][0]

    cancel = client.post(
        "/hangfire/actions/delete",
        data={"id": str(seeded.processing), "csrf_token": token},
        headers={"accept": "application/json"},
    ).json()
    assert cancel["done"] == 1 and engine.get(seeded.processing).state is State.DELETED

    before = len(engine.monitoring.list_jobs(tag="recurring:nightly-report"))
    trigger = client.post(
        "/hangfire/actions/trigger",
        data={"id": "nightly-report", "csrf_token": token, "next": "/hangfire/recurring"},
    )
    assert trigger.status_code == 303 and trigger.headers["location"] == "/hangfire/recurring"
    assert len(engine.monitoring.list_jobs(tag="recurring:nightly-report")) == before + 1
    remove = client.post(
        "/hangfire/actions/remove",
        data={"ids": ["nightly-report"], "csrf_token": token, "next": "https://evil.example/"},
    )
    assert remove.headers["location"] == "/hangfire/"  # never redirects off the dashboard
    assert engine.recurring.list() == []

    bad = client.post("/hangfire/actions/delete", data={"id": "1 OR 1=1", "csrf_token": token})
    assert bad.status_code == 400
    assert client.post("/hangfire/actions/explode", data={"csrf_token": token}).status_code == 404


def test_read_only_hides_and_refuses(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine, read_only=True)
    for path in [*PAGES, f"/hangfire/jobs/{seeded.failed}", f"/hangfire/jobs/{seeded.processing}"]:
        html = client.get(path).text
        assert "/hangfire/actions/" not in html, path
        assert 'name="ids"' not in html, path
    assert "Read-only" in client.get("/hangfire/").text
    token = csrf_token(client.get("/hangfire/").text)  # the sign-out form still has one
    for action, item in [
        ("requeue", seeded.failed),
        ("delete", seeded.processing),
        ("trigger", "nightly-report"),
        ("remove", "nightly-report"),
    ]:
        response = client.post(
            f"/hangfire/actions/{action}", data={"id": item, "csrf_token": token}
        )
        assert response.status_code == 403, action
    assert engine.get(seeded.failed).state is State.FAILED
    assert engine.get(seeded.processing).state is State.PROCESSING
    assert [r.id for r in engine.recurring.list()] == ["nightly-report"]


def test_everything_shown_is_escaped(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine)
    for path in [
        f"/hangfire/jobs/{seeded.failed}",
        "/hangfire/jobs/failed",
        "/hangfire/jobs/failed?q=" + XSS,
        "/hangfire/jobs/failed?q=tenant:acme",
    ]:
        html = client.get(path).text
        assert "<script>window.__xss" not in html, path
        assert "<img src=x" not in html, path
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html, path
    job_page = client.get(f"/hangfire/jobs/{seeded.failed}").text
    assert "could not create the database for &lt;script&gt;" in job_page  # the exception
    login = client.get("/hangfire/login", params={"next": '/hangfire/"><script>x()</script>'})
    assert "<script>x()" not in login.text


def test_security_headers_and_assets(engine: JobEngine, seeded: Seeded) -> None:
    client = superadmin(engine)
    page = client.get("/hangfire/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    cookie = page.headers["set-cookie"]
    assert "diquis_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie

    files = importlib.resources.files("diquis.dashboard").joinpath("static")
    for name, kind in [("dashboard.css", "text/css"), ("dashboard.js", "text/javascript")]:
        served = client.get(f"/hangfire/static/{name}")
        assert served.status_code == 200
        assert served.headers["content-type"].startswith(kind)
        assert served.content == files.joinpath(name).read_bytes()
    assert client.get("/hangfire/static/../app.py").status_code == 404

    login = client.get("/hangfire/login", params={"next": "https://evil.example/"})
    assert 'data-next="/hangfire/"' in login.text
    assert 'data-login-url="/api/auth/login"' in login.text
    assert client.get("/hangfire/login", params={"next": "/hangfire/jobs/failed"}).text.count(
        'data-next="/hangfire/jobs/failed"'
    )


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_sign_out_clears_the_session(engine: JobEngine) -> None:
    client = superadmin(engine)
    token = csrf_token(client.get("/hangfire/").text)
    out = client.post("/hangfire/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/hangfire/login"
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
