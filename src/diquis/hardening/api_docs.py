"""The API docs page (Swagger UI) from files shipped in Python packages, never a CDN.

The Swagger UI bundle comes from the ``fastapi-swagger`` package's resources; the page
and its init script are ours. Nothing on ``/docs`` loads from another origin, so the page
works offline and runs under the app's strict CSP.
"""

from __future__ import annotations

import importlib.resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

_ASSETS = {
    "swagger-ui-bundle.js": (
        "fastapi_swagger",
        "resources/swagger-ui-bundle.js",
        "text/javascript",
    ),
    "swagger-ui.css": ("fastapi_swagger", "resources/swagger-ui.css", "text/css"),
    "favicon-32x32.png": ("fastapi_swagger", "resources/favicon-32x32.png", "image/png"),
    "docs-init.js": ("diquis.hardening", "static/docs-init.js", "text/javascript"),
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} – API docs</title>
<link rel="icon" type="image/png" href="{base}/favicon-32x32.png">
<link rel="stylesheet" href="{base}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/docs-init.js"></script>
</body>
</html>
"""


def _read(package: str, resource: str) -> bytes:
    return importlib.resources.files(package).joinpath(resource).read_bytes()


def docs_routes(title: str, path: str = "/docs") -> list[BaseRoute]:
    """Routes serving the docs page at ``path`` and its assets under ``path``/assets."""
    base = f"{path}/assets"
    page = PAGE.format(title=title, base=base)
    cache: dict[str, bytes] = {}

    async def docs_page(request: Request) -> Response:
        return HTMLResponse(page, headers={"cache-control": "no-cache"})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:
            return Response("not found", status_code=404, media_type="text/plain")
        package, resource, media_type = _ASSETS[name]
        if name not in cache:
            cache[name] = _read(package, resource)
        return Response(
            cache[name], media_type=media_type, headers={"cache-control": "public, max-age=3600"}
        )

    return [Route(path, docs_page), Route(f"{base}/{{name}}", asset)]
