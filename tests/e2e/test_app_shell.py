"""The client's page itself: served by the gateway, self-contained, usable."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import Site


async def test_app_page_loads_and_offers_sign_in(site: Site) -> None:
    page = await site.page()
    response = await page.goto("/app/")
    assert response is not None and response.status == 200
    assert "default-src 'self'" in (await response.all_headers())["content-security-policy"]
    await expect(page.get_by_role("heading", name="Welcome to Rooms")).to_be_visible()
    form = page.get_by_role("tabpanel", name="Sign in")
    await expect(form.get_by_label("Username or email")).to_be_visible()
    await expect(form.get_by_label("Password")).to_be_visible()
    await expect(form.get_by_role("button", name="Sign in")).to_be_enabled()
    # The other ways in are one keystroke away.
    await page.get_by_role("tab", name="Sign in").focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("tabpanel", name="Register")).to_be_visible()


async def test_app_redirects_and_refuses_paths_outside_it(site: Site) -> None:
    page = await site.page()
    response = await page.goto("/app")
    assert response is not None and response.url == f"{site.origin}/app/"
    missing = await page.request.get("/app/nothing-here.js")
    assert missing.status == 404
    assert await missing.json() == {"error": "not found", "code": "not_found"}
    escape = await page.request.get("/app/..%2f..%2fapp.py")
    assert escape.status == 404
