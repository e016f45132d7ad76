"""/docs in a real browser with no network: Swagger UI comes from the gateway itself
and renders the gateway's whole API (its own operations and the services')."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Route, expect

from tests.e2e.conftest import Screenshot, Site


async def test_docs_render_every_operation_offline(site: Site, screenshot: Screenshot) -> None:
    page = await site.page()
    refused: list[str] = []

    async def only_the_gateway(route: Route) -> None:
        # No network but loopback to the gateway: a CDN reference would fail here.
        if route.request.url.startswith(site.origin):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.context.route("**/*", only_the_gateway)
    response = await page.goto("/docs")
    assert response is not None and response.status == 200
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Rooms gateway")
    document: Any = await (await page.request.get("/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 30
    blocks = page.locator(".opblock")
    await expect(blocks).to_have_count(len(operations))
    shown = set()
    for i in range(len(operations)):
        block = blocks.nth(i)
        method = (await block.locator(".opblock-summary-method").inner_text()).strip()
        path = (await block.locator(".opblock-summary-path").get_attribute("data-path")) or ""
        shown.add((method, path))
    assert shown == set(operations)
    # An operation opens, showing its parameters and responses.
    login = page.locator(".opblock-post", has=page.locator('[data-path="/auth/login"]'))
    await login.locator(".opblock-summary").click()
    await expect(login.locator(".responses-table")).to_be_visible()
    await expect(login.locator(".response[data-code='429']")).to_be_visible()
    await screenshot(page, "docs")
    assert refused == []
