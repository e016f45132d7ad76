"""The browser suite (`make e2e`): the three processes for real, on loopback ports
against the embedded Postgres, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from gateway.keys import SigningKey
from tests.conftest import gateway_settings_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# Playwright's own browser download cannot work offline; Debian's chromium is
# launched as it is. Fake camera and microphone, granted without a prompt, so
# meetings can run headless; loopback allowed for the peer connections.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    # Real addresses in ICE candidates rather than mDNS names: no multicast queries.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

# The machine is shared and slow: waits are for events, with room to spare.
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


# Every RTCPeerConnection a page makes, for the tests to read getStats() from.
RECORD_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.__peerConnections = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__peerConnections.push(this); }
  };
})();
"""


class Site:
    """The gateway's address, and the pages opened on it (each in its own context:
    two contexts are two people, with nothing shared)."""

    def __init__(self, browser: Browser, origin: str) -> None:
        self.browser = browser
        self.origin = origin
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []
        self.foreign: list[str] = []

    async def page(self, *, width: int = 1280, height: int = 800) -> Page:
        context = await self.browser.new_context(
            viewport={"width": width, "height": height}, base_url=self.origin
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        await context.add_init_script(RECORD_PEER_CONNECTIONS)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{exc}"))
        page.on("console", self._console)
        # "End the meeting for everyone?" and the like: the person says yes.
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

        def watch(request: Any) -> None:
            url = request.url
            if not url.startswith((self.origin, "data:", "blob:")):
                self.foreign.append(url)

        page.on("request", watch)
        return page

    def _console(self, message: Any) -> None:
        # Chromium logs every 4xx answer as an error; refusals are part of the tests.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gateway_settings(**values): settings of the gateway the test's site runs"
    )


@pytest.fixture
async def site(
    request: pytest.FixtureRequest,
    browser: Browser,
    aiohttp_server: Any,
    database_url: str,
    signing_key: SigningKey,
    jwks_json: str,
) -> AsyncIterator[Site]:
    """The gateway, chat and meeting services on their own loopback ports."""
    from chat_service.app import create_app as create_chat
    from chat_service.settings import ChatSettings
    from gateway.app import create_app as create_gateway
    from meeting_service.app import create_app as create_meeting
    from meeting_service.settings import MeetingSettings

    chat = await aiohttp_server(
        create_chat(ChatSettings(database_url=database_url, jwks=jwks_json, bcrypt_rounds=4))
    )
    meeting = await aiohttp_server(
        create_meeting(MeetingSettings(database_url=database_url, jwks=jwks_json))
    )
    marker = request.node.get_closest_marker("gateway_settings")
    overrides = marker.kwargs if marker is not None else {}
    gateway = await aiohttp_server(
        create_gateway(
            gateway_settings_for(
                database_url,
                signing_key,
                chat_url=str(chat.make_url("")),
                meeting_url=str(meeting.make_url("")),
                **overrides,
            )
        )
    )
    site = Site(browser, str(gateway.make_url("")).rstrip("/"))
    try:
        yield site
        # Every test also proves the page threw nothing and loaded nothing from elsewhere.
        assert site.errors == []
        assert site.foreign == []
    finally:
        await site.close()


Screenshot = Callable[[Page, str], Awaitable[None]]


@pytest.fixture
def screenshot() -> Screenshot:
    """Saves a page as docs/screenshots/NAME.png (the README shows them)."""

    async def take(page: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    return take
