"""The Vary (Region) editor over HTTP: the link a click hands out, the page, and every refusal.

A refused request gets a page that says why and leaves the database and the image store as
they were; a good submit queues one inpaint grid (a grid's cost) with the stored mask and posts
its message in the channel.
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from bot.web.region import PURPOSE, EditorTarget, editor_link
from bot.web.server import WebServer
from imagine.settings import Settings
from storage.contract import EditAction, JobKind, StoredImage
from storage.retention import FileBlobs, purge
from tests.bot.harness import BotRun, ScriptedWorker, button_rows, ephemeral_reply, png
from tests.bot.region import (
    csrf_of,
    editor_bot,
    editor_settings,
    mask_png,
    painted,
    region_link,
    single_image,
    user_jobs,
)
from tests.fakediscord import FakeDiscord, User

__all__ = ["editor_bot", "editor_settings"]


def _server(run: BotRun) -> WebServer:
    assert run.bot is not None and run.bot.web is not None
    return run.bot.web


async def _open(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def _submit(
    session: aiohttp.ClientSession,
    url: str,
    *,
    token: str,
    csrf: str,
    prompt: str = "a lighthouse at dusk",
    mask: bytes | None = None,
    origin: str | None = None,
) -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("t", token)
    form.add_field("csrf", csrf)
    form.add_field("prompt", prompt)
    if mask is not None:
        form.add_field("mask", io.BytesIO(mask), filename="mask.png", content_type="image/png")
    headers = {"Origin": origin} if origin else {}
    action = url.split("?")[0]
    async with session.post(action, data=form, headers=headers) as response:
        return response.status, await response.text()


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def _message(page: str) -> str:
    match = re.search(r'<p id="message">(.*?)</p>', page, re.S)
    assert match is not None, page
    return html.unescape(match[1])


def _session() -> aiohttp.ClientSession:
    # The editor's cookie is for 127.0.0.1; aiohttp keeps IP-address cookies only when told.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_the_button_is_offered_only_with_the_editor_on(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    single = await single_image(fake_discord, bot_run, alice, "a quiet bay")
    assert "Vary (Region)" not in [b.label for b in single.message.buttons]


async def test_a_click_links_to_the_editor_and_a_painted_mask_queues_an_inpaint_grid(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a lighthouse")
    assert button_rows(single.message)[1] == [
        "Vary (Subtle)",
        "Vary (Strong)",
        "Vary (Region)",
        "🔄",
    ]
    click, url = await region_link(fake_discord, single.message, alice)
    assert "works once, for 15 minutes" in await ephemeral_reply(fake_discord, click)
    assert url.startswith(f"{_server(editor_bot).base_url}/edit/region/{single.job.id}/0?t=")

    async with _session() as session:
        status, page = await _open(session, url)
        assert status == 200
        assert 'width="32" height="32"' in page and ">a lighthouse</textarea>" in page
        image_url = re.search(r'<img id="source" src="([^"]+)"', page)
        assert image_url is not None
        async with session.get(
            _server(editor_bot).base_url + image_url[1].replace("&amp;", "&")
        ) as got:
            assert got.status == 200 and await got.read() == single.image
        for asset in ("editor.js", "editor.css"):
            async with session.get(f"{_server(editor_bot).base_url}/edit/static/{asset}") as got:
                assert got.status == 200

        status, done = await _submit(
            session,
            url,
            token=_token(url),
            csrf=csrf_of(page),
            prompt="a lighthouse with a red door --no fog",
            mask=mask_png((4, 8, 20, 30)),
        )
    assert status == 200, done
    jobs = await user_jobs(editor_bot, alice)
    job = jobs[-1]
    assert f"Queued job #{job.id}" in _message(done)
    assert (job.kind, job.cost, job.parent_job_id, job.parent_index) == (
        JobKind.INPAINT,
        4,
        single.job.id,
        0,
    )
    assert job.edit is not None and job.edit.action is EditAction.REGION
    assert job.edit.mask is not None and job.edit.source_size == (32, 32)
    assert editor_bot.storage is not None
    mask = painted(await editor_bot.storage.images.get(job.edit.mask))
    assert mask[8:30, 4:20].all() and mask.sum() == 16 * 22
    assert (job.request.prompt, job.request.negative_prompt) == (
        "a lighthouse with a red door",
        "fog",
    )
    message = await fake_discord.wait_for_message(lambda m: "Vary (Region) by" in m.content)
    assert message.channel_id == fake_discord.channel.id and job.message_id == message.id
    assert message.content.endswith(f"Vary (Region) by <@{alice.id}> (Waiting to start)")
    assert (await editor_bot.storage.quotas.status(alice.id)).used == 8  # two grids


async def test_a_used_link_is_refused_and_queues_nothing_more(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a barn")
    _, url = await region_link(fake_discord, single.message, alice)
    async with _session() as session:
        _, page = await _open(session, url)
        first, _ = await _submit(
            session, url, token=_token(url), csrf=csrf_of(page), mask=mask_png((0, 0, 8, 8))
        )
        assert first == 200
        again, refused = await _submit(
            session, url, token=_token(url), csrf=csrf_of(page), mask=mask_png((0, 0, 9, 9))
        )
        reopened, reopened_page = await _open(session, url)
    assert again == 410 and "already used" in _message(refused)
    assert reopened == 410 and "already used: it queued job #" in _message(reopened_page)
    assert [job.kind for job in await user_jobs(editor_bot, alice)] == [
        JobKind.IMAGINE,
        JobKind.INPAINT,
    ]


async def test_banned_words_hidden_in_permutations_are_refused_and_the_link_survives(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User, boss: User
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a pond")
    add = await fake_discord.invoke_command("admin words add", {"word": "dog"}, user=boss)
    assert "now refused" in await ephemeral_reply(fake_discord, add)
    _, url = await region_link(fake_discord, single.message, alice)
    posted = len(fake_discord.channel_messages())
    async with _session() as session:
        _, page = await _open(session, url)
        for prompt in ("a {do}g by the pond", "a pond --no {do}g", "a {do}g::2 a pond"):
            got, refused = await _submit(
                session,
                url,
                token=_token(url),
                csrf=csrf_of(page),
                prompt=prompt,
                mask=mask_png((0, 0, 8, 8)),
            )
            assert (got, _message(refused)) == (
                400,
                "Your prompt was refused: “dog” is not allowed on this server. "
                "Change it and submit again.",
            ), prompt
        assert [job.kind for job in await user_jobs(editor_bot, alice)] == [JobKind.IMAGINE]
        assert editor_bot.storage is not None
        assert (await editor_bot.storage.quotas.status(alice.id)).used == 4
        assert len(fake_discord.channel_messages()) == posted
        # Nothing was used up: the same link still queues an allowed prompt.
        got, done = await _submit(
            session, url, token=_token(url), csrf=csrf_of(page), mask=mask_png((0, 0, 8, 8))
        )
    assert got == 200, done
    assert [job.kind for job in await user_jobs(editor_bot, alice)] == [
        JobKind.IMAGINE,
        JobKind.INPAINT,
    ]
    await fake_discord.wait_for(lambda: len(fake_discord.channel_messages()) == posted + 1)


async def test_tampered_expired_and_foreign_links_get_a_clear_page(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a tower")
    _, url = await region_link(fake_discord, single.message, alice)
    server = _server(editor_bot)
    target = EditorTarget(single.job.id, 0, fake_discord.channel.id, fake_discord.guild.id)
    expired = editor_link(server, alice.id, target, timedelta(seconds=-1))
    other_image = editor_link(
        server,
        alice.id,
        EditorTarget(single.job.id, 1, target.channel_id, None),
        timedelta(minutes=5),
    )
    admin = server.signer.sign(user_id=alice.id, purpose="admin-login", ttl=timedelta(minutes=5))
    token = _token(url)
    cases = [
        (url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"), 403, "not valid"),
        (expired, 403, "expired"),
        # A link for image #2 opened at image #1's address.
        (url.split("?")[0] + "?t=" + _token(other_image), 403, "another image"),
        (url.split("?")[0] + "?t=" + admin, 403, "made for something else"),
        (url.replace("/0?", "/1?"), 403, "another image"),
    ]
    async with _session() as session:
        for link, status, reason in cases:
            got, page = await _open(session, link)
            assert (got, reason in _message(page)) == (status, True), (link, page)
            posted, refused = await _submit(
                session, link, token=_token(link), csrf="0" * 64, mask=mask_png((0, 0, 4, 4))
            )
            assert posted == status and reason in _message(refused)
        assert token  # the real link still works afterwards
        _, page = await _open(session, url)
        assert csrf_of(page)
    assert [job.kind for job in await user_jobs(editor_bot, alice)] == [JobKind.IMAGINE]


async def test_forms_from_elsewhere_and_bad_masks_are_refused_and_the_link_survives(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a kite")
    _, url = await region_link(fake_discord, single.message, alice)
    token = _token(url)
    assert editor_bot.storage is not None
    async with _session() as session:
        _, page = await _open(session, url)
        csrf = csrf_of(page)
        checks: list[tuple[dict[str, Any], int, str]] = [
            ({"origin": "https://evil.example"}, 403, "sent from https://evil.example"),
            ({"csrf": "f" * 64}, 403, "stale or was not sent by the editor"),
            ({"mask": mask_png((0, 0, 4, 4), (64, 64))}, 400, "it must be the image's size, 32x32"),
            ({"mask": mask_png((0, 0, 0, 0))}, 400, "the mask is empty"),
            ({"mask": b"GIF89a not a png"}, 400, "must be a PNG"),
            ({"mask": b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024)}, 413, "larger than"),
            ({"mask": None}, 400, "multipart/form-data with a mask file"),
            ({"prompt": "a {red, blue} kite"}, 400, "makes 2"),
        ]
        for change, status, reason in checks:
            values: dict[str, Any] = {"token": token, "csrf": csrf, "mask": mask_png((0, 0, 4, 4))}
            got, refused = await _submit(session, url, **(values | change))
            assert (got, reason in _message(refused)) == (status, True), (change, refused)
        # None of that used the link up or queued anything.
        assert [job.kind for job in await user_jobs(editor_bot, alice)] == [JobKind.IMAGINE]
        good, _ = await _submit(session, url, token=token, csrf=csrf, mask=mask_png((0, 0, 4, 4)))
    assert good == 200


async def test_a_form_without_the_pages_cookie_is_refused(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a comet")
    _, url = await region_link(fake_discord, single.message, alice)
    async with _session() as viewer:
        _, page = await _open(viewer, url)
    # Another browser (no cookie) posting the same form, token and CSRF value.
    async with _session() as other:
        got, refused = await _submit(
            other, url, token=_token(url), csrf=csrf_of(page), mask=mask_png((0, 0, 4, 4))
        )
    assert got == 403 and "stale" in _message(refused)
    assert [job.kind for job in await user_jobs(editor_bot, alice)] == [JobKind.IMAGINE]


async def test_links_for_other_peoples_images_are_refused_when_the_server_says_so(
    fake_discord: FakeDiscord, editor_settings: Settings, alice: User, bob: User
) -> None:
    run = BotRun(editor_settings.model_copy(update={"allow_foreign_clicks": False}))
    await run.start(fake_discord)
    try:
        single = await single_image(fake_discord, run, alice, "a harbour")
        server = _server(run)
        target = EditorTarget(single.job.id, 0, fake_discord.channel.id, None)
        foreign = editor_link(server, bob.id, target, timedelta(minutes=5))
        async with _session() as session:
            got, page = await _open(session, foreign)
        assert got == 403 and "Only the person who started this job" in _message(page)
        click = await fake_discord.click(
            single.message, single.message.button("Vary (Region)").custom_id or "", user=bob
        )
        assert "Only the person" in await ephemeral_reply(fake_discord, click)
        assert PURPOSE == "region-edit"
    finally:
        await run.stop()


async def test_the_link_lifetime_is_a_setting(
    fake_discord: FakeDiscord, editor_settings: Settings, alice: User
) -> None:
    run = BotRun(editor_settings.model_copy(update={"region_link_minutes": 5.0}))
    await run.start(fake_discord)
    try:
        single = await single_image(fake_discord, run, alice, "a dune")
        click, url = await region_link(fake_discord, single.message, alice)
        assert "for 5 minutes" in await ephemeral_reply(fake_discord, click)
        server = _server(run)
        remaining = server.signer.verify(_token(url), purpose=PURPOSE).expires_at - datetime.now(
            UTC
        )
        assert timedelta(minutes=4, seconds=50) < remaining <= timedelta(minutes=5)
    finally:
        await run.stop()


async def test_show_of_an_upscale_offers_the_same_buttons_as_its_delivery(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User, bob: User
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "a windmill")
    assert editor_bot.storage is not None
    worker = ScriptedWorker(editor_bot.storage)
    click = await fake_discord.click(
        single.message, single.message.button("Upscale (Subtle)").custom_id or "", user=alice
    )
    await click.wait_acked()
    delivered = await fake_discord.wait_for_message(
        lambda m: m.id != single.message.id and "Waiting to start" in m.content
    )
    job = await worker.claim()
    assert job.kind is JobKind.UPSCALE
    blob = await editor_bot.storage.images.put(png((90, 90, 90), (64, 64)))
    stored = [StoredImage(0, blob.sha256, 64, 64, job.seed, blob.size, str(blob.path))]
    await editor_bot.storage.queue.finish(job.id, worker.worker_id, stored, gpu_seconds=0.5)
    await fake_discord.wait_for(lambda: bool(delivered.buttons and delivered.attachments))
    assert "Vary (Region)" in button_rows(delivered)[0]

    before = {m.id for m in fake_discord.channel_messages()}
    # Bob shows it: Alice's U1 post started her post cooldown.
    show = await fake_discord.invoke_command("show", {"job": job.id}, user=bob)
    assert (await ephemeral_reply(fake_discord, show)).startswith(f"Posted job #{job.id} again")
    again = next(
        m for m in fake_discord.channel_messages() if m.id not in before and not m.ephemeral
    )
    assert button_rows(again) == button_rows(delivered)
    # The re-posted Vary (Region) works like the first: it hands out an editor link.
    _, url = await region_link(fake_discord, again, alice)
    assert f"/edit/region/{job.id}/0?t=" in url


async def test_an_image_removed_by_retention_cannot_be_edited_any_more(
    fake_discord: FakeDiscord, editor_bot: BotRun, alice: User
) -> None:
    single = await single_image(fake_discord, editor_bot, alice, "an old mill")
    _, url = await region_link(fake_discord, single.message, alice)
    assert editor_bot.storage is not None
    async with _session() as session:
        _, page = await _open(session, url)
        # The images are removed while the page is open.
        store = FileBlobs(editor_bot.settings.data_dir / "images")
        later = datetime.now(UTC) + timedelta(days=31)
        report = await purge(editor_bot.storage.db, store, now=later, older_than=timedelta(days=30))
        assert report.jobs == 1
        posted, refused = await _submit(
            session, url, token=_token(url), csrf=csrf_of(page), mask=mask_png((0, 0, 8, 8))
        )
        reopened, reopened_page = await _open(session, url)
    removed = (
        f"The stored images of job #{single.job.id} were removed after the retention period, "
        "so they can no longer be edited; the images in its message remain."
    )
    assert (posted, _message(refused)) == (403, removed)
    assert (reopened, _message(reopened_page)) == (403, removed)
    assert [job.kind for job in await user_jobs(editor_bot, alice)] == [JobKind.IMAGINE]
