"""The reference web client under /app/: static files from gateway/static/app/,
served on the API's own origin so the browser needs no CORS."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from shared.endpoints import endpoint

ROOT = (Path(__file__).parent / "static" / "app").resolve()

# Everything the page loads comes from this origin: no CDN, works air-gapped.
# Media from getUserMedia and peers are MediaStream objects, which CSP does not gate.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data: https:; connect-src 'self'; media-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load (Last-Modified/ETag make that a 304): a deploy is
    # seen at once, and no stale module mixes with a fresh one.
    "Cache-Control": "no-cache",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self)",
}


@endpoint("The web client", public=True, hidden=True)
async def app_redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/app/")


@endpoint("The web client's files", public=True, hidden=True)
async def app_file(request: web.Request) -> web.FileResponse:
    name = request.match_info["path"] or "index.html"
    path = (ROOT / name).resolve()
    if not path.is_relative_to(ROOT) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers=HEADERS)


def add_web_client(app: web.Application) -> None:
    app.router.add_get("/app", app_redirect)
    app.router.add_get("/app/{path:.*}", app_file)
