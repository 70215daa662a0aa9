"""/docs renders in Chromium with every other origin blocked, under the app's CSP."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import AppFactory


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_api_docs_render_offline_under_the_csp(start_app: AppFactory, browser: Any) -> None:
    with start_app() as run:
        context = browser.new_context()
        foreign: list[str] = []

        def offline(route: Any) -> None:
            url = route.request.url
            if url.startswith(run.base):
                route.continue_()
            else:
                foreign.append(url)
                route.abort("internetdisconnected")

        context.route("**/*", offline)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{run.base}/docs")
        page.wait_for_selector(".swagger-ui .information-container h1.title", timeout=15_000)
        assert "Diquis" in page.inner_text(".swagger-ui .information-container h1.title")
        page.wait_for_selector('.opblock-summary-path[data-path="/api/tenants"]', timeout=15_000)
        assert page.locator(".opblock").count() >= 8
        assert foreign == []
        assert not [p for p in problems if "Content Security Policy" in p], problems
        context.close()
