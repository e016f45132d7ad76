"""Two browsers in one meeting: real WebRTC through our signaling, fake camera and
microphone. Each side must receive the other's video (inbound bytes growing)."""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect

from tests.e2e.conftest import Screenshot, Site
from tests.e2e.pages import (
    ask_to_join_as_guest,
    join_by_code,
    join_meeting,
    register,
    start_meeting,
)

INBOUND_VIDEO_BYTES = """
async () => {
  let total = 0;
  for (const pc of window.__peerConnections || []) {
    if (pc.connectionState === "closed") continue;
    const stats = await pc.getStats();
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "video") {
        total += report.bytesReceived || 0;
      }
    });
  }
  return total;
}
"""


async def inbound_video_bytes(page: Page) -> int:
    return int(await page.evaluate(INBOUND_VIDEO_BYTES))


async def receives_video(page: Page) -> None:
    """Inbound video bytes above zero, then growing past what they were: a live stream."""
    await page.wait_for_function(f"({INBOUND_VIDEO_BYTES})().then((n) => n > 0)", polling=250)
    before = await inbound_video_bytes(page)
    await page.wait_for_function(
        f"({INBOUND_VIDEO_BYTES})().then((n) => n > {before})", polling=250
    )


def tile(page: Page, name: str) -> Locator:
    grid = page.get_by_role("list", name="Participants' video")
    return grid.get_by_role("listitem", name=name, exact=True)


async def test_two_browsers_see_each_other_then_host_mutes_and_ends(
    site: Site, screenshot: Screenshot
) -> None:
    ada, bob = await site.page(), await site.page()
    await register(ada, "ada", "Ada")
    code = await start_meeting(ada, "Team Standup")
    await join_meeting(ada)
    await register(bob, "bob", "Bob")
    await join_by_code(bob, code)
    await join_meeting(bob)

    await receives_video(ada)
    await receives_video(bob)
    # And the page shows it: the other's tile plays (HAVE_ENOUGH_DATA).
    await expect(tile(ada, "Bob").locator("video")).to_have_js_property("readyState", 4)
    await expect(tile(bob, "Ada").locator("video")).to_have_js_property("readyState", 4)
    await screenshot(ada, "meeting")

    # The host mutes Bob: Bob's own page shows it, and so does the host's.
    await ada.get_by_role("button", name="Mute Bob").click()
    await expect(bob.get_by_role("button", name="Unmute")).to_be_visible()
    await expect(bob.get_by_text("The host muted you")).to_be_visible()
    people = ada.get_by_role("list", name="In the meeting")
    await expect(people.get_by_text("muted", exact=True)).to_be_visible()
    # Bob may unmute himself, and the host sees that too.
    await bob.get_by_role("button", name="Unmute").click()
    await expect(bob.get_by_role("button", name="Mute", exact=True)).to_be_visible()
    await expect(people.get_by_text("muted", exact=True)).to_be_hidden()

    # Bob turns his camera off: the host sees his initial instead; then on again.
    await bob.get_by_role("button", name="Stop video").click()
    await expect(tile(ada, "Bob").locator(".avatar")).to_be_visible()
    await expect(tile(ada, "Bob").locator("video")).to_be_hidden()
    await bob.get_by_role("button", name="Start video").click()
    await expect(tile(ada, "Bob").locator(".avatar")).to_be_hidden()
    await expect(tile(ada, "Bob").locator("video")).to_be_visible()

    # Bob presents his screen (the fake UI picks the screen); the host sees it, then
    # turns screen sharing off for participants, which stops Bob's and hides his button.
    await bob.get_by_role("button", name="Share screen").click()
    await expect(bob.get_by_role("button", name="Stop sharing")).to_be_visible()
    await expect(tile(ada, "Bob").get_by_text("presenting")).to_be_visible()
    await ada.get_by_text("Settings", exact=True).click()
    settings = ada.get_by_role("form", name="Room settings")
    await settings.get_by_label("Participants may share their screen").uncheck()
    await settings.get_by_role("button", name="Save settings").click()
    await expect(tile(ada, "Bob").get_by_text("presenting")).to_be_hidden()
    await expect(bob.get_by_role("button", name="Share screen")).to_be_hidden()
    await expect(bob.get_by_role("button", name="Stop sharing")).to_be_hidden()

    await ada.get_by_role("button", name="End meeting for all").click()
    await expect(bob.get_by_role("heading", name="The meeting has ended")).to_be_visible()


async def test_guest_waits_is_admitted_and_both_see_each_other(
    site: Site, screenshot: Screenshot
) -> None:
    # The guest is on a phone.
    ada, gus = await site.page(), await site.page(width=390, height=844)
    await register(ada, "ada", "Ada")
    code = await start_meeting(ada, "Interview", waiting_room=True)
    await join_meeting(ada)

    await ask_to_join_as_guest(gus, "Gus", code)

    await ada.get_by_role("button", name="Admit Gus").click()
    await expect(gus.get_by_role("button", name="Leave")).to_be_visible()
    await receives_video(gus)
    await receives_video(ada)
    await expect(tile(gus, "Ada").locator("video")).to_have_js_property("readyState", 4)
    await expect(tile(ada, "Gus").locator("video")).to_have_js_property("readyState", 4)
    await expect(ada.get_by_role("list", name="In the meeting").get_by_text("Gus")).to_be_visible()

    # A raised hand and the in-meeting chat reach the other side live.
    await gus.get_by_role("button", name="Raise hand").click()
    await expect(tile(ada, "Gus").get_by_text("hand raised")).to_be_visible()
    await expect(gus.get_by_role("button", name="Lower hand")).to_be_visible()
    await gus.get_by_role("textbox", name="Chat message").fill("Thanks for letting me in")
    await gus.get_by_role("textbox", name="Chat message").press("Enter")
    chat = ada.get_by_role("list", name="Meeting chat messages")
    await expect(chat.get_by_text("Thanks for letting me in")).to_be_visible()
    assert await gus.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await gus.evaluate("window.scrollTo(0, 0)")
    await screenshot(gus, "meeting-phone")
