"""/docs: Swagger UI from files installed with the project (the swagger-ui-py package
ships Swagger UI 5, which renders OpenAPI 3.1), so the page works with no network."""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from aiohttp import web

from shared.endpoints import endpoint

SWAGGER_UI = Path(str(files("swagger_ui") / "static"))
OWN = Path(__file__).parent / "static"
ASSETS: dict[str, Path] = {
    "swagger-ui.css": SWAGGER_UI / "swagger-ui.css",
    "swagger-ui-bundle.js": SWAGGER_UI / "swagger-ui-bundle.js",
    "favicon-32x32.png": SWAGGER_UI / "favicon-32x32.png",
    "docs.js": OWN / "docs.js",
}

# Relative URLs: the page works under any prefix a proxy mounts it at.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/docs.js"></script>
</body></html>
"""

# Only this origin: the page can neither load nor send anything elsewhere.
POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)


def add_docs_routes(app: web.Application, title: str) -> None:
    page = PAGE.format(title=html.escape(title))

    @endpoint(
        "A page that renders the OpenAPI document",
        public=True,
        tags=("operations",),
        database=False,
    )
    async def docs(request: web.Request) -> web.Response:
        return web.Response(
            text=page, content_type="text/html", headers={"Content-Security-Policy": POLICY}
        )

    @endpoint("The files of the /docs page", public=True, hidden=True, database=False)
    async def docs_asset(request: web.Request) -> web.StreamResponse:
        path = ASSETS.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        # ETag and Last-Modified: a browser revalidates and gets 304 until an upgrade.
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    app.router.add_get("/docs", docs)
    app.router.add_get("/docs/{name}", docs_asset)
