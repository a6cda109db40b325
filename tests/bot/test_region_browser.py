"""The Vary (Region) editor in headless Chromium: paint, undo, submit, and refused links.

Debian's ``chromium`` driven by Playwright (never a downloaded browser). Without it the test is
skipped, unless ``CI`` is set: then it fails (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from bot.web.region import EditorTarget, editor_link
from storage.contract import EditAction, JobKind
from tests.bot.harness import BotRun
from tests.bot.region import (
    editor_bot,
    editor_settings,
    painted,
    region_link,
    single_image,
    user_jobs,
)
from tests.fakediscord import FakeDiscord, User

__all__ = ["editor_bot", "editor_settings"]
pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"


def _chromium() -> str | None:
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (the system's), one per test."""
    path = _chromium()
    if path is None:
        message = f"no chromium at {CHROMIUM} or on PATH (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must install it")
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def _drag(page: Page, points: list[tuple[float, float]], size: int = 32) -> None:
    """Press, move through ``points`` (image pixels) and release, on the mask canvas."""
    canvas = page.locator("#mask")
    box = await canvas.bounding_box()
    assert box is not None and box["width"] > 200  # the image is shown large enough to paint

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * box["width"] / size, box["y"] + y * box["height"] / size

    mouse = page.mouse
    await mouse.move(*at(*points[0]))
    await mouse.down()
    for point in points[1:]:
        await mouse.move(*at(*point), steps=4)
    await mouse.up()


async def test_paint_a_region_in_the_browser_and_its_job_appears(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User, browser: Browser
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a windmill")
    _, url = await region_link(fake_discord, single.message, alice)
    assert editor_bot.bot is not None and editor_bot.bot.web is not None
    base = editor_bot.bot.web.base_url
    context = await browser.new_context()
    page = await context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(url)  # returns once the page and its image have loaded
    assert await page.locator("#source").evaluate("image => image.naturalWidth") == 32
    assert await page.locator("h1").inner_text() == "Vary (Region)"

    # A rectangle, a brush stroke, and a stroke that is undone.
    await page.click("#rect")
    await _drag(page, [(2, 2), (14, 14)])
    await page.click("#brush")
    await page.fill("#size", "20")
    await _drag(page, [(20, 20), (24, 24), (28, 28)])
    await _drag(page, [(18, 5), (30, 5)])
    await page.click("#undo")
    # Clear wipes everything; undoing the clear brings the painting back.
    await page.click("#clear")
    await page.click("#undo")
    await page.fill("#prompt", "a windmill in a field of tulips")
    await page.click("#submit")
    await expect(page.locator("#message")).to_contain_text("Queued job #")
    text = await page.locator("#message").inner_text()
    await context.close()

    job = (await user_jobs(editor_bot, alice))[-1]
    assert f"Queued job #{job.id}" in text
    assert job.kind is JobKind.INPAINT and job.edit is not None
    assert job.edit.action is EditAction.REGION and job.edit.mask is not None
    assert job.request.prompt == "a windmill in a field of tulips"
    assert editor_bot.storage is not None
    mask = painted(await editor_bot.storage.images.get(job.edit.mask))
    assert mask.shape == (32, 32)
    assert mask[3:13, 3:13].all()  # the rectangle
    assert mask[24, 24] and mask[21, 21]  # the brush stroke
    assert not mask[5, 24] and not mask[0:2, :].any()  # the undone stroke, unpainted rows
    message = await fake_discord.wait_for_message(
        lambda m: "Vary (Region) by" in m.content and m.content.endswith("(Waiting to start)")
    )
    assert job.message_id == message.id
    # Everything the page used came from the bot's own server.
    assert requested and all(address.startswith(base) for address in requested)


async def test_expired_and_foreign_links_are_refused_in_the_browser(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User, browser: Browser
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a lake")
    assert editor_bot.bot is not None and editor_bot.bot.web is not None
    server = editor_bot.bot.web
    target = EditorTarget(single.job.id, 0, fake_discord.channel.id, fake_discord.guild.id)
    expired = editor_link(server, alice.id, target, timedelta(seconds=-1))
    other = editor_link(
        server,
        alice.id,
        EditorTarget(single.job.id, 3, target.channel_id, None),
        timedelta(minutes=5),
    )
    # A link made for image #4, opened at image #1's address.
    foreign = other.replace("/3?", "/0?")
    page = await browser.new_page()
    for link, reason in [(expired, "expired"), (foreign, "made for another image")]:
        response = await page.goto(link)
        assert response is not None and response.status == 403
        assert reason in await page.locator("#message").inner_text()
        assert await page.locator("#mask").count() == 0
    await page.close()
    assert [job.kind for job in await user_jobs(editor_bot, alice)] == [JobKind.IMAGINE]
