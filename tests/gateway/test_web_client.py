"""The web client's files as the gateway serves them (the browser suite, `make e2e`,
proves they work; this checks what any HTTP client sees, in `make test`)."""

from __future__ import annotations

import re
from typing import Any

from gateway.web_client import ROOT

IMPORT = re.compile(r"""(?:from\s+|import\s*\(\s*)["'](\./[^"']+)["']""")


async def test_the_page_and_its_headers(gateway: Any) -> None:
    response = await gateway.get("/app/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert '<script type="module" src="js/main.js">' in await response.text()
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Last-Modified" in response.headers


async def test_modules_are_served_as_javascript(gateway: Any) -> None:
    response = await gateway.get("/app/js/main.js")
    assert response.status == 200
    assert response.content_type in ("text/javascript", "application/javascript")
    styles = await gateway.get("/app/app.css")
    assert styles.content_type == "text/css"


async def test_app_without_slash_redirects(gateway: Any) -> None:
    response = await gateway.get("/app", allow_redirects=False)
    assert response.status == 301
    assert response.headers["Location"] == "/app/"


async def test_unknown_files_and_escapes_are_404(gateway: Any) -> None:
    for path in ("/app/nothing.js", "/app/js/", "/app/..%2fapp.py", "/app/%2e%2e/web_client.py"):
        response = await gateway.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"] == "not found"


async def test_every_module_a_module_imports_is_there() -> None:
    """A missing or misspelt module would only show in a browser: checked here too."""
    modules = sorted((ROOT / "js").glob("*.js"))
    imported = set()
    for module in modules:
        for target in IMPORT.findall(module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"
            imported.add(target.removeprefix("./"))
    # Every module but the entry point is used by another.
    assert imported == {m.name for m in modules} - {"main.js"}
