"""Every way into a meeting that is refused says why, in words, on the page."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import Site
from tests.e2e.pages import (
    ask_to_join_as_guest,
    continue_as_guest,
    join_by_code,
    join_meeting,
    open_meeting,
    register,
    start_meeting,
)


async def test_locked_full_guests_removed_ended(site: Site) -> None:
    ada, bob, gus = await site.page(), await site.page(), await site.page()
    await register(ada, "ada", "Ada")
    code = await start_meeting(ada, "Planning", capacity=2)
    await join_meeting(ada)
    await expect(ada.get_by_role("button", name="End meeting for all")).to_be_visible()

    # Locked: said before trying, and again when trying.
    await ada.get_by_role("button", name="Lock meeting").click()
    await expect(ada.get_by_text("locked", exact=True)).to_be_visible()
    await register(bob, "bob", "Bob")
    await open_meeting(bob, code)
    await expect(bob.get_by_role("alert")).to_have_text(
        "This meeting is locked; only the host can join now."
    )
    await join_meeting(bob)
    await expect(bob.get_by_role("alert")).to_have_text(
        "This meeting is locked: the host is not letting anyone else in."
    )

    await ada.get_by_role("button", name="Unlock meeting").click()
    await expect(ada.get_by_text("locked", exact=True)).to_be_hidden()
    await join_meeting(bob)
    await expect(bob.get_by_role("button", name="Leave")).to_be_visible()
    await expect(ada.get_by_role("list", name="In the meeting").get_by_text("Bob")).to_be_visible()

    # Full: the host and Bob are the two places.
    await continue_as_guest(gus, "Gus", f"/app/#/meet/{code}")
    await join_meeting(gus)
    await expect(gus.get_by_role("alert")).to_have_text(
        "This meeting is full. Try again when someone leaves."
    )

    # No guests: said on the pre-join screen.
    await ada.get_by_text("Settings", exact=True).click()
    settings = ada.get_by_role("form", name="Room settings")
    await settings.get_by_label("Guests may join").uncheck()
    await settings.get_by_role("button", name="Save settings").click()
    await expect(ada.get_by_text("Settings saved")).to_be_visible()
    await join_by_code(gus, code)
    await expect(gus.get_by_role("alert")).to_have_text(
        "This meeting does not allow guests. Sign in with an account to join."
    )

    # Removed: Bob's page says so at once, and he cannot come back.
    await ada.get_by_role("button", name="Remove Bob").click()
    await expect(
        bob.get_by_role("heading", name="You were removed from the meeting")
    ).to_be_visible()
    await join_by_code(bob, code)
    await join_meeting(bob)
    await expect(bob.get_by_role("alert")).to_have_text("The host removed you from this meeting.")

    # Ended.
    await ada.get_by_role("button", name="End meeting for all").click()
    await expect(ada.get_by_role("heading", name="The meeting has ended")).to_be_visible()
    await join_by_code(bob, code)
    await expect(bob.get_by_role("alert")).to_have_text("This meeting has ended.")


async def test_a_guest_the_host_denies_is_told(site: Site) -> None:
    ada, gus = await site.page(), await site.page()
    await register(ada, "ada", "Ada")
    code = await start_meeting(ada, "Board", waiting_room=True)
    await join_meeting(ada)
    await ask_to_join_as_guest(gus, "Gus", code)
    await expect(ada.get_by_text("Gus is waiting to join")).to_be_visible()
    await ada.get_by_role("button", name="Deny Gus").click()
    await expect(gus.get_by_role("heading", name="The host did not let you in")).to_be_visible()
    await expect(ada.get_by_role("list", name="Waiting to join")).to_be_hidden()
