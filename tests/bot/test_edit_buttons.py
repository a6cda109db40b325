"""The editing row under a single image, through the fake Discord with a scripted worker.

Each button queues one outpaint job (a grid's cost) whose edit is recorded on the job; the
finished job is delivered as a new grid with the usual buttons. Custom Zoom answers with a form
(a modal) and queues on submit.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagine.settings import Settings
from storage.contract import EditAction, Job, JobKind, JobStatus, StoredImage
from tests.bot.harness import BotRun, ScriptedWorker, button_rows, ephemeral_reply, eventually
from tests.fakediscord import FakeDiscord, Message, User

EDIT_ROWS = [
    ["Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom"],
    ["⬅️", "➡️", "⬆️", "⬇️"],
]


async def _single(
    fake: FakeDiscord, worker: ScriptedWorker, user: User, prompt: str, *, size: tuple[int, int]
) -> tuple[Job, Message]:
    """Imagine ``prompt``, finish it with ``size`` images and press U1: (grid job, U1 post)."""
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    await interaction.wait_acked()
    message = await fake.wait_for_message(lambda m: m.content.endswith("(Waiting to start)"))
    job = await _finish(worker, await worker.claim(), size)
    await fake.wait_for(lambda: len(message.buttons) == 9, what="the grid buttons")
    await (await fake.click(message, message.button("U1").custom_id or "", user=user)).wait_acked()
    single = await fake.wait_for_message(lambda m: "Image #1" in m.content)
    return job, single


async def _finish(worker: ScriptedWorker, job: Job, size: tuple[int, int]) -> Job:
    """Store four ``size`` images and their grid and finish ``job``."""
    stored = []
    for index in (-1, 0, 1, 2, 3):
        side = (size[0] * 2, size[1] * 2) if index < 0 else size
        out = io.BytesIO()
        Image.new("RGB", side, worker.colors[index % 4]).save(out, format="PNG")
        blob = await worker.storage.images.put(out.getvalue())
        stored.append(StoredImage(index, blob.sha256, *side, job.seed, blob.size, blob.path))
    return await worker.storage.queue.finish(job.id, worker.worker_id, stored, gpu_seconds=0.1)


@pytest.mark.parametrize(
    ("label", "action", "zoom", "canvas", "offset", "aspect"),
    [
        ("Zoom Out 2x", EditAction.ZOOM, 2.0, (64, 64), (16, 16), "1:1"),
        ("Zoom Out 1.5x", EditAction.ZOOM, 1.5, (48, 48), (8, 8), "1:1"),
        ("⬅️", EditAction.PAN_LEFT, None, (48, 32), (16, 0), "3:2"),
        ("➡️", EditAction.PAN_RIGHT, None, (48, 32), (0, 0), "3:2"),
        ("⬆️", EditAction.PAN_UP, None, (32, 48), (0, 16), "2:3"),
        ("⬇️", EditAction.PAN_DOWN, None, (32, 48), (0, 0), "2:3"),
    ],
)
async def test_each_edit_button_queues_an_outpaint_and_delivers_a_new_grid(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    worker: ScriptedWorker,
    alice: User,
    label: str,
    action: EditAction,
    zoom: float | None,
    canvas: tuple[int, int],
    offset: tuple[int, int],
    aspect: str,
) -> None:
    parent, single = await _single(fake_discord, worker, alice, "a quiet bay", size=(32, 32))
    assert button_rows(single)[2:] == EDIT_ROWS  # square: no Make Square
    assert bot_run.storage is not None
    queue = bot_run.storage.queue
    source = next(r for r in await queue.images(parent.id) if r.index == 0)

    click = await fake_discord.click(single, single.button(label).custom_id or "", user=alice)
    await click.wait_acked()
    message = await fake_discord.wait_for_message(
        lambda m: (
            f" - {_name(label)} by <@{alice.id}>" in m.content
            and m.content.endswith("(Waiting to start)")
        )
    )
    ar = "" if aspect == "1:1" else f" --ar {aspect}"
    assert message.content.startswith(f"**a quiet bay{ar} --seed ")
    job = await eventually(lambda: _job_of(bot_run, alice, message.id))
    assert (job.kind, job.cost, job.parent_job_id, job.parent_index) == (
        JobKind.OUTPAINT,
        4,
        parent.id,
        0,
    )
    assert job.edit is not None
    assert (job.edit.action, job.edit.zoom, job.edit.source) == (action, zoom, source.sha256)
    assert (job.edit.canvas, job.edit.offset, job.edit.source_size) == (canvas, offset, (32, 32))
    assert job.request.aspect == aspect and job.strength == 0.9
    assert job.seed != parent.seed
    assert (await bot_run.storage.quotas.status(alice.id)).used == 8

    claimed = await worker.claim()
    assert claimed.id == job.id
    await worker.finish(claimed)
    await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the edit's grid")
    assert button_rows(message) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    assert f" - {_name(label)} by <@{alice.id}> (fast)" in message.content
    assert message.attachments[0].width == 64


def _name(label: str) -> str:
    pans = {"⬅️": "Pan Left", "➡️": "Pan Right", "⬆️": "Pan Up", "⬇️": "Pan Down"}
    return pans.get(label, label)


async def _job_of(run: BotRun, user: User, message_id: int) -> Job | None:
    """The user's job shown by message ``message_id``, once its id is stored."""
    assert run.storage is not None
    jobs = await run.storage.queue.user_jobs(user.id, list(JobStatus))
    return next((job for job in jobs if job.message_id == message_id), None)


async def test_make_square_is_offered_on_a_wide_image_only_and_squares_it(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    _, single = await _single(fake_discord, worker, alice, "dunes --ar 3:2", size=(48, 32))
    assert button_rows(single)[2] == [*EDIT_ROWS[0], "Make Square"]
    click = await fake_discord.click(
        single, single.button("Make Square").custom_id or "", user=alice
    )
    await click.wait_acked()
    message = await fake_discord.wait_for_message(
        lambda m: "Make Square by" in m.content and m.content.endswith("(Waiting to start)")
    )
    job = await eventually(lambda: _job_of(bot_run, alice, message.id))
    assert job.edit is not None and job.edit.action is EditAction.SQUARE
    assert (job.edit.canvas, job.edit.offset) == ((48, 48), (0, 8))
    # A square result is painted at SDXL's square size and says so.
    assert (job.request.width, job.request.height, job.request.aspect) == (1024, 1024, "1:1")
    assert message.content.startswith("**dunes --seed ")


async def test_rerolling_an_edit_grid_repeats_the_edit_with_a_new_seed(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    _, single = await _single(fake_discord, worker, alice, "a lantern", size=(32, 32))
    await (
        await fake_discord.click(single, single.button("⬆️").custom_id or "", user=alice)
    ).wait_acked()
    grid = await fake_discord.wait_for_message(lambda m: "Pan Up by" in m.content)
    edit_job = await worker.claim()
    await worker.finish(edit_job)
    await fake_discord.wait_for(lambda: len(grid.buttons) == 9, what="the pan's grid")
    await (
        await fake_discord.click(grid, grid.button("🔄").custom_id or "", user=alice)
    ).wait_acked()
    again = await fake_discord.wait_for_message(
        lambda m: m.id != grid.id and "Pan Up by" in m.content
    )
    rerolled = await eventually(lambda: _job_of(bot_run, alice, again.id))
    assert rerolled.kind is JobKind.OUTPAINT and rerolled.edit == edit_job.edit
    assert (rerolled.parent_job_id, rerolled.parent_index) == (
        edit_job.parent_job_id,
        edit_job.parent_index,
    )
    assert rerolled.seed != edit_job.seed and rerolled.request.height == edit_job.request.height


async def test_custom_zoom_opens_a_form_and_queues_the_edited_prompt(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    parent, single = await _single(fake_discord, worker, alice, "a red barn --s 250", size=(32, 32))
    opened = await fake_discord.click(
        single, single.button("Custom Zoom").custom_id or "", user=alice
    )
    response = await opened.wait_acked()
    assert response.type == 9 and opened.modal is not None
    fields = {node["custom_id"]: node for node in _inputs(opened.modal)}
    assert fields["prompt"]["value"] == "a red barn --stylize 250"
    assert fields["zoom"]["value"] == "2"

    bad = await fake_discord.submit_modal(opened, {"zoom": "3"})
    assert await ephemeral_reply(fake_discord, bad) == (
        "zoom must be more than 1 and at most 2; got `3`"
    )
    assert bot_run.storage is not None
    assert len(await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus))) == 1
    # The answered form closed; the user opens it again.
    opened = await fake_discord.click(
        single, single.button("Custom Zoom").custom_id or "", user=alice
    )
    await opened.wait_acked()
    submitted = await fake_discord.submit_modal(
        opened, {"prompt": "a red barn in snow --no fence --ar 2:1", "zoom": "1.25"}
    )
    await submitted.wait_acked()
    message = await fake_discord.wait_for_message(
        lambda m: "Zoom Out 1.25x by" in m.content and m.content.endswith("(Waiting to start)")
    )
    job = await eventually(lambda: _job_of(bot_run, alice, message.id))
    assert job.edit is not None and job.edit.zoom == 1.25
    # 32 px zoomed 1.25x is 40 px, then widened to 2:1.
    assert (job.edit.canvas, job.edit.offset) == ((80, 40), (24, 4))
    assert (job.request.prompt, job.request.negative_prompt) == ("a red barn in snow", "fence")
    assert (job.request.aspect, job.request.width, job.request.height) == ("2:1", 1408, 704)
    assert job.request.stylize == 100  # the edited prompt dropped --s 250
    assert job.interaction_id == submitted.id and job.parent_job_id == parent.id
    assert bot_run.storage is not None
    assert (await bot_run.storage.quotas.status(alice.id)).used == 8


async def test_custom_zoom_refuses_bad_prompts_and_other_peoples_images(
    fake_discord: FakeDiscord, bot_settings: Settings, alice: User, bob: User
) -> None:
    run = BotRun(bot_settings.model_copy(update={"allow_foreign_clicks": False}))
    await run.start(fake_discord)
    try:
        assert run.storage is not None
        worker = ScriptedWorker(run.storage)
        _, single = await _single(fake_discord, worker, alice, "a kite", size=(32, 32))
        custom_id = single.button("Custom Zoom").custom_id or ""
        foreign = await fake_discord.click(single, custom_id, user=bob)
        assert await ephemeral_reply(fake_discord, foreign) == (
            "Only the person who started this job can use its buttons."
        )
        assert foreign.modal is None
        for prompt, refusal in [
            ("a {red, blue} kite", "makes 2"),
            ("https://example.com/a.png kite", "remove the image URLs"),
            ("a kite --zoom 2.5", "at most 2; got `2.5`"),
        ]:
            opened = await fake_discord.click(single, custom_id, user=alice)
            await opened.wait_acked()
            submitted = await fake_discord.submit_modal(opened, {"prompt": prompt})
            assert refusal in await ephemeral_reply(fake_discord, submitted)
        jobs = await run.storage.queue.user_jobs(alice.id, list(JobStatus))
        assert len(jobs) == 1  # only the first grid
    finally:
        await run.stop()


async def test_custom_zoom_refuses_banned_words_hidden_in_permutations(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User, boss: User
) -> None:
    _, single = await _single(fake_discord, worker, alice, "a kite", size=(32, 32))
    add = await fake_discord.invoke_command("admin words add", {"word": "cat"}, user=boss)
    assert "now refused" in await ephemeral_reply(fake_discord, add)
    posted = len(fake_discord.channel_messages())
    for prompt in ("a {ca}t on a roof", "a kite --no {c}at", "a kite --zoom 1.5 --no c{a}t"):
        opened = await fake_discord.click(
            single, single.button("Custom Zoom").custom_id or "", user=alice
        )
        await opened.wait_acked()
        submitted = await fake_discord.submit_modal(opened, {"prompt": prompt})
        assert await ephemeral_reply(fake_discord, submitted) == (
            "Your prompt was refused: “cat” is not allowed on this server."
        ), prompt
    assert bot_run.storage is not None
    assert len(await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus))) == 1
    assert (await bot_run.storage.quotas.status(alice.id)).used == 4  # the first grid only
    assert len(fake_discord.channel_messages()) == posted


def _inputs(modal: dict[str, object]) -> list[dict[str, str]]:
    from tests.fakediscord._modals import text_inputs

    return [node for _, node in text_inputs(modal)]
