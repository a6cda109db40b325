"""End to end: Zoom Out 2x on a real render, painted by the real worker on the tiny SDXL."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from storage.contract import JobKind, JobStatus
from tests.bot.harness import BotRun, button_rows
from tests.bot.test_end_to_end import e2e_settings, render_release, service
from tests.fakediscord import FakeDiscord, Message, User

__all__ = ["e2e_settings", "render_release", "service"]
pytestmark = pytest.mark.slow


def _grid_done(message: Message) -> bool:
    return len(message.buttons) == 9 and bool(message.attachments)


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


async def test_zoom_out_paints_around_the_image_and_keeps_its_middle(
    fake_discord: FakeDiscord, service: BotRun, alice: User, render_release: threading.Event
) -> None:
    render_release.set()
    assert service.storage is not None
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "a harbour at dawn --seed 5"}, user=alice
    )
    await command.wait_acked()
    grid = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a harbour"))
    await fake_discord.wait_for(lambda: _grid_done(grid), timeout=120, what="the grid")
    await (
        await fake_discord.click(grid, grid.button("U1").custom_id or "", user=alice)
    ).wait_acked()
    single = await fake_discord.wait_for_message(lambda m: "Image #1" in m.content)
    source = _pixels(single.attachments[0].data)
    assert source.shape == (64, 64, 3)

    zoom_id = single.button("Zoom Out 2x").custom_id or ""
    await (await fake_discord.click(single, zoom_id, user=alice)).wait_acked()
    zoomed = await fake_discord.wait_for_message(lambda m: "Zoom Out 2x by" in m.content)
    await fake_discord.wait_for(lambda: _grid_done(zoomed), timeout=120, what="the zoomed grid")
    assert button_rows(zoomed) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    cells = _pixels(zoomed.attachments[0].data)
    assert cells.shape == (128, 128, 3)  # four 64 px images
    # The source is now the middle 32x32 of each image; beyond the 8 px seam it is unchanged.
    with Image.open(io.BytesIO(single.attachments[0].data)) as image:
        small = np.asarray(
            image.convert("RGB").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.int16
        )
    for row in (0, 64):
        for col in (0, 64):
            cell = cells[row : row + 64, col : col + 64]
            assert np.abs(cell[24:40, 24:40] - small[8:24, 8:24]).max() <= 1
    jobs = await service.storage.queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
    assert [job.kind for job in jobs].count(JobKind.OUTPAINT) == 1
