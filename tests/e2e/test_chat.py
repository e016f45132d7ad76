"""Chat in the browser: two people, one room, messages live both ways."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Page, WebSocketRoute, expect

from tests.e2e.conftest import Screenshot, Site
from tests.e2e.pages import PASSWORD, register


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


async def test_a_dropped_socket_resumes_after_the_last_message_with_nothing_twice(
    site: Site,
) -> None:
    ada, bob = await site.page(), await site.page()
    await register(ada, "ada", "Ada")
    await register(bob, "bob", "Bob")

    # Ada's room sockets pass through the test, which can drop them and refuse new ones.
    routes: list[WebSocketRoute] = []
    urls: list[str] = []
    refusing = asyncio.Event()

    async def relay(ws: WebSocketRoute) -> None:
        urls.append(ws.url)
        if refusing.is_set():
            await ws.close(code=1011, reason="down for the test")
            return
        ws.connect_to_server()
        routes.append(ws)

    await ada.route_web_socket(re.compile(r"/api/rooms/\d+/ws"), relay)

    create = ada.get_by_role("form", name="Create a room")
    await create.get_by_label("New room name").fill("Resume")
    await create.get_by_role("button", name="Create room").click()
    await expect(ada.locator(".status-dot")).to_have_text("live")
    join = bob.get_by_role("form", name="Join a room by name")
    await join.get_by_label("Room name").fill("Resume")
    await join.get_by_role("button", name="Join").click()
    await expect(bob.locator(".status-dot")).to_have_text("live")

    ada_messages = ada.get_by_role("list", name="Messages in Resume")
    await send(bob, "one")
    await expect(ada_messages.get_by_text("one", exact=True)).to_be_visible()
    one_id = await ada_messages.locator(".message").last.get_attribute("data-id")

    # The line drops and stays down while Bob writes twice.
    refusing.set()
    await routes[-1].close(code=1012, reason="resync")
    await expect(ada.locator(".status-dot")).to_have_text("reconnecting…")
    await send(bob, "two")
    await send(bob, "three")
    bob_messages = bob.get_by_role("list", name="Messages in Resume")
    await expect(bob_messages.get_by_text("three", exact=True)).to_be_visible()
    refusing.clear()

    # Back: the gap is filled, in order, and nothing shows twice.
    await expect(ada.locator(".status-dot")).to_have_text("live")
    await expect(ada_messages.locator(".message .text")).to_have_text(["one", "two", "three"])
    assert f"after={one_id}" in urls[-1]
    await send(bob, "four")
    await expect(ada_messages.locator(".message .text")).to_have_text(
        ["one", "two", "three", "four"]
    )


async def test_history_shows_the_newest_page_then_older_on_request(site: Site) -> None:
    page = await site.page()
    # Sixty messages written through the API beforehand...
    answer = await page.request.post(
        "/auth/register", data={"username": "hal", "password": PASSWORD}
    )
    auth = {"Authorization": f"Bearer {(await answer.json())['access_token']}"}
    created = await page.request.post(
        "/api/create_room", data={"room_name": "Archive", "is_private": 0}, headers=auth
    )
    room_id = (await created.json())["room_id"]
    for n in range(1, 61):
        sent = await page.request.post(
            "/api/send_room_message",
            data={"room_id": room_id, "message": f"note {n}"},
            headers=auth,
        )
        assert sent.status == 201

    # ...then read in the client: the newest fifty, then the ten before them.
    await page.goto("/app/")
    form = page.get_by_role("tabpanel", name="Sign in")
    await form.get_by_label("Username or email").fill("hal")
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await page.get_by_role("link", name="# Archive").first.click()
    texts = page.get_by_role("list", name="Messages in Archive").locator(".message .text")
    await expect(texts).to_have_count(50)
    await expect(texts.first).to_have_text("note 11")
    await expect(texts.last).to_have_text("note 60")
    await page.get_by_role("button", name="Load older messages").click()
    await expect(texts).to_have_count(60)
    await expect(texts.first).to_have_text("note 1")
    await expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()


async def test_private_room_password_leave_and_delete(site: Site) -> None:
    ada, bob = await site.page(), await site.page()
    await register(ada, "ada", "Ada")
    await register(bob, "bob", "Bob")
    create = ada.get_by_role("form", name="Create a room")
    await create.get_by_label("New room name").fill("Secret Club")
    await create.get_by_label("Private (password to join)").check()
    await create.get_by_label("Password", exact=True).fill("open sesame")
    await create.get_by_role("button", name="Create room").click()
    await expect(ada.get_by_role("heading", name="Secret Club")).to_be_visible()
    await expect(
        ada.get_by_role("complementary", name="Members").get_by_text("ada")
    ).to_be_visible()

    join = bob.get_by_role("form", name="Join a room by name")
    await join.get_by_label("Room name").fill("Secret Club")
    await join.get_by_role("button", name="Join").click()
    await expect(join.get_by_role("alert")).to_have_text("password required")
    await join.get_by_label("Password (private rooms)").fill("guess")
    await join.get_by_role("button", name="Join").click()
    await expect(join.get_by_role("alert")).to_have_text("wrong password")
    await join.get_by_label("Password (private rooms)").fill("open sesame")
    await join.get_by_role("button", name="Join").click()
    await expect(bob.get_by_role("heading", name="Secret Club")).to_be_visible()
    # Only the creator may delete.
    await expect(bob.get_by_role("button", name="Delete room")).to_have_count(0)

    await bob.get_by_role("button", name="Leave").click()
    await expect(bob.get_by_text('left room "Secret Club"')).to_be_visible()
    await expect(
        bob.get_by_role("list", name="Your rooms").get_by_text("Secret Club")
    ).to_be_hidden()

    await ada.get_by_role("button", name="Delete room").click()
    await expect(ada.get_by_text('room "Secret Club" deleted')).to_be_visible()
    await expect(
        ada.get_by_role("list", name="Your rooms").get_by_text("Secret Club")
    ).to_be_hidden()
