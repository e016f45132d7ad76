"""The session in the browser: keyboard only, phone width, tokens refreshed in time."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import Site
from tests.e2e.pages import PASSWORD, register


async def test_register_and_chat_with_the_keyboard_alone(site: Site) -> None:
    page = await site.page()
    await page.goto("/app/")
    await page.get_by_role("tab", name="Sign in").focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("tab", name="Register")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Username", exact=True)).to_be_focused()
    await page.keyboard.type("kim")
    await page.keyboard.press("Tab")
    await page.keyboard.type("Kim")
    await page.keyboard.press("Tab")  # email: optional
    await page.keyboard.press("Tab")
    await expect(
        page.get_by_role("tabpanel", name="Register").get_by_label("Password")
    ).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.locator("#whoami")).to_have_text("Kim")

    create = page.get_by_role("form", name="Create a room")
    await create.get_by_label("New room name").focus()
    await page.keyboard.type("Keyboard club")
    await page.keyboard.press("Enter")
    # The new room opens with the composer focused: type and Enter sends.
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    await page.keyboard.type("typed, never clicked")
    await page.keyboard.press("Enter")
    messages = page.get_by_role("list", name="Messages in Keyboard club")
    await expect(messages.get_by_text("typed, never clicked")).to_be_visible()


async def test_phone_width_has_no_sideways_scrolling(site: Site) -> None:
    page = await site.page(width=390, height=844)
    await register(page, "pia", "Pia")
    create = page.get_by_role("form", name="Create a room")
    await create.get_by_label("New room name").fill("Pocket")
    await create.get_by_role("button", name="Create room").click()
    composer = page.get_by_role("textbox", name="Message")
    await composer.fill("small screen, same chat")
    await composer.press("Enter")
    await expect(page.get_by_text("small screen, same chat")).to_be_in_viewport()
    await expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
    members = page.get_by_role("complementary", name="Members")
    await expect(members.get_by_text("pia")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.get_by_role("link", name="Meetings").click()
    await expect(page.get_by_role("button", name="Start meeting")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.gateway_settings(access_token_ttl_s=30)
async def test_the_access_token_is_refreshed_before_it_expires(site: Site) -> None:
    page = await site.page()
    async with page.expect_response(lambda r: r.url.endswith("/auth/refresh")) as refreshed:
        await register(page, "rex", "Rex")
        # then the client's own timer, well before the 30 s are up
    response = await refreshed.value
    assert response.status == 200
    fresh = (await response.json())["access_token"]
    # The next call carries the new token.
    async with page.expect_request(lambda r: r.url.endswith("/api/create_room")) as sent:
        create = page.get_by_role("form", name="Create a room")
        await create.get_by_label("New room name").fill("Fresh")
        await create.get_by_role("button", name="Create room").click()
    assert (await sent.value).headers["authorization"] == f"Bearer {fresh}"
    await expect(page.get_by_role("heading", name="Fresh")).to_be_visible()
