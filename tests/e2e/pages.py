"""What a person does in the client, step by step, shared by the browser tests."""

from __future__ import annotations

from playwright.async_api import Page, expect

PASSWORD = "correct horse battery"


async def register(page: Page, username: str, display_name: str) -> None:
    await page.goto("/app/")
    await page.get_by_role("tab", name="Register").click()
    form = page.get_by_role("tabpanel", name="Register")
    await form.get_by_label("Username").fill(username)
    await form.get_by_label("Display name (optional)").fill(display_name)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Create account").click()
    await expect(page.locator("#whoami")).to_have_text(display_name)


async def continue_as_guest(page: Page, display_name: str, path: str = "/app/") -> None:
    await page.goto(path)
    await page.get_by_role("tab", name="Guest").click()
    form = page.get_by_role("tabpanel", name="Guest")
    await form.get_by_label("Your name").fill(display_name)
    await form.get_by_role("button", name="Continue as guest").click()
    await expect(page.locator("#whoami")).to_have_text(f"{display_name} (guest)")


async def start_meeting(
    page: Page, name: str, *, waiting_room: bool = False, capacity: int | None = None
) -> str:
    """Creates a meeting from the Meetings page; answers its code (on the pre-join screen)."""
    await page.get_by_role("link", name="Meetings").click()
    form = page.get_by_role("form", name="Start a meeting")
    await form.get_by_label("Meeting name").fill(name)
    if waiting_room:
        await form.get_by_label("Waiting room (you admit each person)").check()
    if capacity is not None:
        await form.get_by_label("Maximum participants").fill(str(capacity))
    await form.get_by_role("button", name="Start meeting").click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()
    return page.url.rsplit("/", 1)[-1]


async def open_meeting(page: Page, code: str) -> None:
    await page.goto(f"/app/#/meet/{code}")


async def join_meeting(page: Page, button: str = "Join now") -> None:
    await page.get_by_role("button", name=button).click()


async def join_by_code(page: Page, code: str) -> None:
    """From anywhere in the client: Meetings, then the code (no reload: tokens live in memory)."""
    await page.get_by_role("link", name="Meetings", exact=True).click()
    form = page.get_by_role("form", name="Join with a code")
    await form.get_by_label("Meeting code or link").fill(code)
    await form.get_by_role("button", name="Join").click()


async def ask_to_join_as_guest(page: Page, display_name: str, code: str) -> None:
    """A guest asks to join a meeting with a waiting room, and is shown that they wait."""
    await continue_as_guest(page, display_name, f"/app/#/meet/{code}")
    await join_meeting(page, "Ask to join")
    await expect(
        page.get_by_role("heading", name="Waiting for the host to let you in")
    ).to_be_visible()
