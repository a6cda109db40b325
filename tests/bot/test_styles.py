"""Styles, fast profiles and translated prompts through the fake Discord and the real bot."""

from __future__ import annotations

import pytest

from bot.errors import UserFacingError
from bot.offered import check_offered, style_choices, styles_content, with_style
from storage.capabilities import Offered
from storage.contract import (
    Control,
    ControlKind,
    GenerationRequest,
    Job,
    JobKind,
    JobStatus,
    SpeedMode,
)
from storage.errors import JobNotFound
from tests.bot.harness import BotRun, ScriptedWorker, button_rows, ephemeral_reply, eventually, png
from tests.fakediscord import FakeDiscord, Message, User

SERVED = {
    "profiles": {"draft": {"steps": 4, "guidance": 1.0, "size": 512}},
    "loras": {
        "ink-wash": {"trigger": "", "weight": 1.0},
        "tiny-style": {"trigger": "tinystyle", "weight": 0.8},
    },
    "controlnets": ["canny"],
    "ip_adapter": False,
    "translation": True,
}
OFFERED = Offered(
    profiles=SERVED["profiles"],  # type: ignore[arg-type]
    loras=SERVED["loras"],  # type: ignore[arg-type]
    controlnets=frozenset({"canny"}),
)


def req(**changes: object) -> GenerationRequest:
    return GenerationRequest(prompt="a fox", segments=(("a fox", 1.0),), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            req(loras=(("pastel", 1.0),)),
            "`--lora pastel`: there is no such style here. Available styles: `ink-wash`, "
            "`tiny-style` (see /styles).",
        ),
        (
            req(mode=SpeedMode.TURBO),
            "`--turbo` (or the turbo speed mode in /settings) needs the turbo profile, which "
            "this server does not offer. Fast profiles here: `--draft`.",
        ),
        (
            req(control=Control(ControlKind.DEPTH, 0.5)),
            "`--control depth`: this server has no depth ControlNet. ControlNets here: `canny`.",
        ),
    ],
)
def test_what_no_worker_serves_is_refused_with_what_is_there(
    request_: GenerationRequest, message: str
) -> None:
    with pytest.raises(UserFacingError) as caught:
        check_offered([req(), request_], OFFERED)
    assert str(caught.value) == message


def test_served_requests_pass_and_the_style_option_adds_its_default_weight() -> None:
    served = [
        req(loras=(("tiny-style", 0.5),), mode=SpeedMode.DRAFT),
        req(control=Control(ControlKind.CANNY, 1.0)),
    ]
    check_offered(served, OFFERED)
    styled = with_style([req(), served[0]], "tiny-style", OFFERED)
    assert [r.loras for r in styled] == [(("tiny-style", 0.8),), (("tiny-style", 0.5),)]
    assert with_style([req()], None, OFFERED) == [req()]
    assert style_choices(OFFERED, "TINY") == [
        ("tiny-style (weight 0.8, trigger: tinystyle)", "tiny-style")
    ]
    assert [value for _, value in style_choices(OFFERED, "")] == ["ink-wash", "tiny-style"]
    assert styles_content(Offered()) == "No LoRA styles are available on this server."


async def _register(bot_run: BotRun) -> None:
    assert bot_run.storage is not None
    await bot_run.storage.queue.register_worker("gpu-1", "host", "sdxl", SERVED)


async def test_styles_lists_what_workers_registered(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    interaction = await fake_discord.invoke_command("styles", {}, user=alice)
    assert await ephemeral_reply(fake_discord, interaction) == (
        "No LoRA styles are available on this server."
    )
    await _register(bot_run)
    interaction = await fake_discord.invoke_command("styles", {}, user=alice)
    assert await ephemeral_reply(fake_discord, interaction) == (
        "**Styles** (`--lora NAME` or `--lora NAME:0.8`, weight 0 to 2, up to 4):\n"
        "- `ink-wash`: default weight 1\n"
        "- `tiny-style`: default weight 0.8, trigger: tinystyle"
    )


async def test_style_option_queues_the_lora_and_unknown_styles_are_refused(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    await _register(bot_run)
    assert bot_run.storage is not None
    queue = bot_run.storage.queue
    refused = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox", "style": "pastel"}, user=alice
    )
    assert "Available styles: `ink-wash`, `tiny-style`" in await ephemeral_reply(
        fake_discord, refused
    )
    assert await queue.user_jobs(alice.id, [JobStatus.QUEUED]) == []
    accepted = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox", "style": "tiny-style"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, accepted) == "Queued 1 job: #1."
    [job] = await queue.user_jobs(alice.id, [JobStatus.QUEUED])
    assert job.request.loras == (("tiny-style", 0.8),)


async def test_lora_and_control_parameters_are_checked_against_the_workers(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    await _register(bot_run)
    assert bot_run.storage is not None
    queue = bot_run.storage.queue
    refused = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox --lora pastel:0.5"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, refused) == (
        "`--lora pastel`: there is no such style here. Available styles: `ink-wash`, "
        "`tiny-style` (see /styles)."
    )
    picture = [("edges.png", png((200, 10, 10), (48, 40)))]
    depth = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox --control depth"}, user=alice, attachments=picture
    )
    assert await ephemeral_reply(fake_discord, depth) == (
        "`--control depth`: this server has no depth ControlNet. ControlNets here: `canny`."
    )
    assert await queue.user_jobs(alice.id, [JobStatus.QUEUED]) == []
    accepted = await fake_discord.invoke_command(
        "imagine",
        {"prompt": "a fox --lora ink-wash:0.5 --lora tiny-style --draft --control canny:0.8"},
        user=alice,
        attachments=picture,
    )
    assert await ephemeral_reply(fake_discord, accepted) == "Queued 1 job: #1."
    [job] = await queue.user_jobs(alice.id, [JobStatus.QUEUED])
    assert job.request.loras == (("ink-wash", 0.5), ("tiny-style", 1.0))
    assert job.request.mode is SpeedMode.DRAFT
    assert job.request.control == Control(ControlKind.CANNY, 0.8)
    assert len(job.input_images) == 1  # the control image, stored with the job


async def test_turbo_without_a_turbo_profile_is_refused_and_draft_is_queued(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    await _register(bot_run)
    refused = await fake_discord.invoke_command("imagine", {"prompt": "a fox --turbo"}, user=alice)
    assert "needs the turbo profile, which this server does not offer" in await ephemeral_reply(
        fake_discord, refused
    )
    assert bot_run.storage is not None
    assert await bot_run.storage.queue.user_jobs(alice.id, [JobStatus.QUEUED]) == []


async def test_a_translated_result_shows_the_original_and_the_english(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    interaction = await fake_discord.invoke_command(
        "imagine", {"prompt": "一只红色的狐狸 --seed 5"}, user=alice
    )
    await interaction.wait_acked()
    message = await fake_discord.wait_for_message(
        lambda m: m.content.startswith("**一只红色的狐狸") and m.interaction is None
    )
    job = await worker.claim()
    # What the real worker stores with the result of a translated prompt (tests/worker).
    english = {"translation": {"prompt": "a red fox", "segments": [["a red fox", 1.0]]}}
    await worker.finish(job, rendered=english)
    await fake_discord.wait_for(lambda: "(fast)" in message.content, what="the result edit")
    assert message.content == (
        f"**一只红色的狐狸 --seed 5** - <@{alice.id}> (fast)\nPainted in English: a red fox"
    )


async def test_a_draft_grid_gets_e_buttons_that_enhance_a_cell(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    await _register(bot_run)
    assert bot_run.storage is not None
    queue = bot_run.storage.queue
    interaction = await fake_discord.invoke_command(
        "imagine", {"prompt": "a harbour --draft --seed 40"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, interaction) == "Queued 1 job: #1."
    message = await fake_discord.wait_for_message(
        lambda m: m.content.startswith("**a harbour") and m.interaction is None
    )
    draft = await worker.claim()
    await worker.finish(draft)
    await fake_discord.wait_for(lambda: len(message.buttons) == 13, what="the draft grid")
    assert button_rows(message) == [
        ["U1", "U2", "U3", "U4", "🔄"],
        ["V1", "V2", "V3", "V4"],
        ["E1", "E2", "E3", "E4"],
    ]
    click = await fake_discord.click(message, "imagine:enhance:1:1", user=alice)
    await click.wait_acked()
    enhanced = await eventually(lambda: _job(bot_run, 2))
    assert (enhanced.kind, enhanced.parent_job_id, enhanced.parent_index) == (
        JobKind.VARIATION,
        1,
        1,
    )
    assert enhanced.seed == 41 and enhanced.request.mode is SpeedMode.FAST
    assert enhanced.strength == 0.55 and enhanced.cost == 4
    posted = await fake_discord.wait_for_message(
        lambda m: m.content.startswith("**a harbour") and "Enhanced image #2" in m.content
    )
    assert posted.content.endswith(f"Enhanced image #2 by <@{alice.id}> (Waiting to start)")
    assert [j.id for j in await queue.user_jobs(alice.id, [JobStatus.QUEUED])] == [2]


async def _finished_grid(
    fake: FakeDiscord, worker: ScriptedWorker, user: User, prompt: str, *, buttons: int
) -> Message:
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    await interaction.wait_acked()
    message = await fake.wait_for_message(
        lambda m: m.content.startswith(f"**{prompt.split(' --')[0]}") and m.interaction is None
    )
    await worker.finish(await worker.claim())
    await fake.wait_for(lambda: len(message.buttons) == buttons, what="the grid buttons")
    return message


async def _speed_mode(fake: FakeDiscord, user: User, mode: str) -> None:
    """Choose ``mode`` in the user's /settings speed mode menu."""
    shown = await fake.invoke_command("settings", user=user)
    await ephemeral_reply(fake, shown)
    menu = shown.original
    assert menu is not None
    await (await fake.select(menu, "imagine-settings:mode", [mode], user=user)).wait_acked()
    await fake.wait_for(lambda: f"Speed mode: {mode}" in menu.content, what="the new mode")


async def _click(
    fake: FakeDiscord, run: BotRun, user: User, message: Message, label: str, job_id: int
) -> Job:
    """Click ``label`` on ``message`` as ``user`` and return the job it queued."""
    await (await fake.click(message, message.button(label).custom_id or "", user=user)).wait_acked()
    return await eventually(lambda: _job(run, job_id))


async def test_rerolls_and_variations_of_a_draft_grid_are_draft_grids_in_any_speed_mode(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    await _register(bot_run)
    assert bot_run.storage is not None
    message = await _finished_grid(
        fake_discord, worker, alice, "a harbour --draft --seed 40", buttons=13
    )
    # The profile is the parent's: relax in /settings does not turn the draft into a full render.
    await _speed_mode(fake_discord, alice, "relax")
    reroll = await _click(fake_discord, bot_run, alice, message, "🔄", 2)
    variation = await _click(fake_discord, bot_run, alice, message, "V2", 3)
    assert (reroll.kind, reroll.request.mode, reroll.seed != 40) == (
        JobKind.REROLL,
        SpeedMode.DRAFT,
        True,
    )
    assert (variation.kind, variation.parent_index, variation.request.mode) == (
        JobKind.VARIATION,
        1,
        SpeedMode.DRAFT,
    )
    # Charged as the draft grids they are (relax would cost nothing).
    assert (await bot_run.storage.quotas.status(alice.id)).used == 12
    for _ in range(2):
        await worker.finish(await worker.claim())
    posted = {(await bot_run.storage.queue.get(job_id)).message_id for job_id in (2, 3)}
    grids = [m for m in fake_discord.channel_messages() if m.id in posted]
    # Draft grids again, so they offer Enhance as their parent did.
    await fake_discord.wait_for(
        lambda: [len(m.buttons) for m in grids] == [13, 13], what="E buttons on the new grids"
    )


async def test_the_clickers_speed_mode_gives_only_fast_or_relax_to_a_default_profile_grid(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    await _register(bot_run)
    assert bot_run.storage is not None
    turbo_host = {"models": ["default"], "profiles": {"turbo": {"steps": 2}}}
    await bot_run.storage.queue.register_worker("gpu-2", "host", "sdxl", turbo_host)
    message = await _finished_grid(fake_discord, worker, alice, "a castle --seed 5", buttons=9)
    await _speed_mode(fake_discord, alice, "turbo")
    turbo_reroll = await _click(fake_discord, bot_run, alice, message, "🔄", 2)
    turbo_variation = await _click(fake_discord, bot_run, alice, message, "V1", 3)
    await _speed_mode(fake_discord, alice, "relax")
    relax_reroll = await _click(fake_discord, bot_run, alice, message, "🔄", 4)
    # Turbo is a profile, and a grid painted with the default one is re-rolled with it.
    assert [job.request.mode for job in (turbo_reroll, turbo_variation, relax_reroll)] == [
        SpeedMode.FAST,
        SpeedMode.FAST,
        SpeedMode.RELAX,
    ]
    assert (await bot_run.storage.quotas.status(alice.id)).used == 12


async def _job(run: BotRun, job_id: int) -> Job | None:
    assert run.storage is not None
    try:
        return await run.storage.queue.get(job_id)
    except JobNotFound:
        return None
