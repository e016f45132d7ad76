"""Chat in the browser: two people, one room, messages live both ways."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.e2e.conftest import Screenshot, Site
from tests.e2e.pages import register


async def send(page: Page, text: str) -> None:
    composer = page.get_by_role("textbox", name="Message")
    await composer.fill(text)
    await composer.press("Enter")


async def test_two_people_chat_live(site: Site, screenshot: Screenshot) -> None:
    ada, bob = await site.page(), await site.page()
    await register(ada, "ada", "Ada")
    await register(bob, "bob", "Bob")

    create = ada.get_by_role("form", name="Create a room")
    await create.get_by_label("New room name").fill("General Discussion")
    await create.get_by_role("button", name="Create room").click()
    await expect(ada.get_by_role("heading", name="General Discussion")).to_be_visible()
    await expect(ada.locator(".status-dot")).to_have_text("live")

    # Bob, whose page was open before the room existed, joins it by name.
    join = bob.get_by_role("form", name="Join a room by name")
    await join.get_by_label("Room name").fill("general discussion")
    await join.get_by_role("button", name="Join").click()
    await expect(bob.get_by_role("heading", name="General Discussion")).to_be_visible()
    await expect(bob.locator(".status-dot")).to_have_text("live")

    await send(ada, "Hello Bob, can you read me?")
    ada_messages = ada.get_by_role("list", name="Messages in General Discussion")
    bob_messages = bob.get_by_role("list", name="Messages in General Discussion")
    # Live, with no reload: Bob's page was loaded before the message existed.
    await expect(bob_messages.get_by_text("Hello Bob, can you read me?")).to_be_visible()
    await send(bob, "Loud and clear, Ada.")
    await expect(ada_messages.get_by_text("Loud and clear, Ada.")).to_be_visible()
    # Each message once on each side: the sender's own copy and the socket's echo are one.
    await expect(ada_messages.locator(".message")).to_have_count(2)
    await expect(bob_messages.locator(".message")).to_have_count(2)
    await expect(ada.locator(".members li")).to_have_count(2)
    await screenshot(ada, "chat")
