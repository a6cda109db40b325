"""The admin dashboard in headless Chromium: signed login, a job with its thumbnail, a quota
edit that reaches the database and /info; a job's record with what painted it and the
workers with what they serve; refused links and sessions change nothing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from bot.web.dashboard import login_link
from imagine.cli import main
from imagine.settings import Settings
from storage.audit import AuditLog
from storage.tables import web_sessions
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply
from tests.bot.internet import SITE, Internet, picture
from tests.fakediscord import FakeDiscord, User

pytestmark = pytest.mark.browser


@pytest.fixture
async def web_run(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], internet: Internet
) -> AsyncIterator[BotRun]:
    """The bot with its web server on a free port of 127.0.0.1, fetching references from the
    fake internet."""
    settings = Settings.load(
        {**bot_environ, "IMAGINE_WEB_PORT": "0", "IMAGINE_WEB_HOST": "127.0.0.1"}
    )
    run = BotRun(settings, fetch_session=internet.session, resolver=internet.resolve)
    try:
        await run.start(fake_discord)
        yield run
    finally:
        await run.stop()


def _base(run: BotRun) -> str:
    assert run.bot is not None and run.bot.web is not None
    return run.bot.web.base_url


async def _finished_job(fake: FakeDiscord, run: BotRun, user: User, prompt: str) -> None:
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    await interaction.wait_acked()
    message = await fake.wait_for_message(lambda m: m.content.endswith("(Waiting to start)"))
    assert run.storage is not None
    await ScriptedWorker(run.storage).finish(await ScriptedWorker(run.storage).claim())
    await fake.wait_for(lambda: len(message.buttons) == 9, what="the grid")


async def _dashboard_link(fake: FakeDiscord, admin: User) -> str:
    interaction = await fake.invoke_command("admin dashboard", user=admin)
    reply = await ephemeral_reply(fake, interaction)
    assert reply.startswith("Your dashboard login link (works once, for 10 minutes;")
    found = re.search(r"<(http://[^>]+)>", reply)
    assert found is not None, reply
    return found[1]


async def _sign_in(browser: Any, link: str) -> Any:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(link)
    await page.click("#sign-in")
    await page.wait_for_url(re.compile(r".*/admin/$"))
    return page


async def test_an_admin_signs_in_sees_a_job_and_changes_a_quota(
    fake_discord: FakeDiscord, web_run: BotRun, browser: Any, alice: User, boss: User
) -> None:
    await _finished_job(fake_discord, web_run, alice, "a glass lighthouse --seed 9")
    link = await _dashboard_link(fake_discord, boss)
    assert link.startswith(_base(web_run) + "/admin/login?token=")

    page = await _sign_in(browser, link)
    assert await page.inner_text("header") != ""
    assert f"signed in as {boss.id}" in await page.inner_text("header")
    assert await page.inner_text("#queued") == "0"
    assert await page.query_selector("svg.chart rect.bar") is not None

    await page.goto(f"{_base(web_run)}/admin/jobs?status=succeeded")
    row = await page.inner_text("#jobs")
    assert "#1" in row and "a glass lighthouse --seed 9" in row
    width = await page.eval_on_selector(
        "#jobs img.thumb", "img => img.complete ? img.naturalWidth : 0"
    )
    assert width == 64  # the 64x64 grid, scaled to fit 160 px: kept at its size

    await page.click("text=#1")
    assert await page.inner_text("#typed") == "a glass lighthouse --seed 9"
    assert await page.inner_text("#rendered") == "a glass lighthouse --seed 9"
    ledger = await page.inner_text("#ledger")
    assert "reserve" in ledger and "+4" in ledger

    await page.goto(f"{_base(web_run)}/admin/users/{alice.id}")
    assert await page.inner_text("#limit") == "40 images per day (server default)"
    await page.fill("#quota-form input[name=images]", "7")
    await page.select_option("#quota-form select[name=period]", "week")
    await page.click("#quota-form button")
    assert await page.inner_text("#done") == "Quota saved."
    assert await page.inner_text("#limit") == "7 images per week (own limit)"

    assert web_run.storage is not None
    status = await web_run.storage.quotas.status(alice.id)
    assert (status.limit, status.period, status.custom) == (7, "week", True)
    (entry,) = await AuditLog(web_run.storage.db).recent()
    assert (entry.admin_id, entry.via, entry.action, entry.target) == (
        boss.id,
        "dashboard",
        "quota.set",
        str(alice.id),
    )
    assert "dashboard" in await page.inner_text("#changes")

    info = await fake_discord.invoke_command("info", user=alice)
    assert "Quota: 4 of 7 images used per week, 3 left" in await ephemeral_reply(fake_discord, info)


SERVED: dict[str, Any] = {
    "models": ["default"],
    "profiles": {"turbo": {"steps": 4, "guidance": 0.0}},
    "loras": {"ink-wash": {"trigger": "", "weight": 1.0}},
    "controlnets": ["canny"],
    "ip_adapter": True,
    "translation": True,
}


async def test_a_job_page_shows_what_painted_it_and_the_queue_what_workers_serve(
    fake_discord: FakeDiscord, web_run: BotRun, browser: Any, alice: User, boss: User
) -> None:
    assert web_run.storage is not None
    worker = ScriptedWorker(web_run.storage)
    await web_run.storage.queue.register_worker(worker.worker_id, "gpu-host", "sdxl", SERVED)
    prompt = f"一只红色的狐狸 --no 模糊 --lora ink-wash:0.8 --sref {SITE}/style.png --seed 5"
    interaction = await fake_discord.invoke_command("imagine", {"prompt": prompt}, user=alice)
    assert await ephemeral_reply(fake_discord, interaction) == "Queued 1 job: #1."
    message = await fake_discord.wait_for_message(
        lambda m: m.content.startswith("**一只红色的狐狸") and m.interaction is None
    )
    job = await worker.claim()
    # What a worker stores for such a job (gpu_worker.features, tests/worker/test_loop.py).
    rendered = {
        "profile": "default",
        "loras": [["ink-wash", 0.8]],
        "reference": {"role": "style", "scale": 0.6},
        "translation": {
            "prompt": "a red fox",
            "segments": [["a red fox", 1.0]],
            "negative_prompt": "blur",
        },
    }
    await worker.finish(job, rendered=rendered)
    await fake_discord.wait_for(
        lambda: message.content.endswith("\nPainted in English: a red fox"), what="the result"
    )

    page = await _sign_in(browser, await _dashboard_link(fake_discord, boss))
    cells = await page.eval_on_selector_all(
        "#workers tr", "rows => rows.map(r => Array.from(r.cells, c => c.innerText))"
    )
    assert cells[1][:3] == [
        worker.worker_id,
        "gpu-host",
        "sdxl; ControlNet canny, an IP-Adapter, style ink-wash, model default, profile turbo",
    ]

    await page.goto(f"{_base(web_run)}/admin/jobs/{job.id}")
    assert await page.inner_text("#typed") == prompt
    painted = await page.eval_on_selector_all(
        "#painted tr", "rows => rows.map(r => [r.cells[0].innerText, r.cells[1].innerText])"
    )
    assert painted == [
        ["profile", "default"],
        ["styles", "ink-wash at 0.8"],
        ["IP-Adapter", "style reference at scale 0.6"],
        ["painted in English", "a red fox"],
        ["--no in English", "blur"],
    ]
    assert await page.inner_text("#input-images") == "—"
    style = hashlib.sha256(picture("style.png")).hexdigest()
    assert await page.inner_text("#style-images") == style
    assert await page.inner_text("#character-images") == "—"

    # A job still waiting: its character reference, and no record of what painted it yet.
    waiting = f"a fox --cref {SITE}/face.png"
    interaction = await fake_discord.invoke_command("imagine", {"prompt": waiting}, user=alice)
    assert await ephemeral_reply(fake_discord, interaction) == "Queued 1 job: #2."
    await page.goto(f"{_base(web_run)}/admin/jobs/2")
    assert await page.inner_text("#character-images") == (
        hashlib.sha256(picture("face.png")).hexdigest()
    )
    assert await page.inner_text("#style-images") == "—"
    assert await page.inner_text("#painted") == (
        "Not recorded: the worker records what painted a job when it finishes it."
    )


async def test_expired_or_used_links_and_missing_sessions_are_refused(
    fake_discord: FakeDiscord, web_run: BotRun, browser: Any, alice: User, boss: User
) -> None:
    await _finished_job(fake_discord, web_run, alice, "refused things")
    base = _base(web_run)
    assert web_run.bot is not None and web_run.bot.web is not None and web_run.storage
    quotas = web_run.storage.quotas

    expired = web_run.bot.web.signer.sign(
        user_id=boss.id, purpose="admin-login", ttl=timedelta(seconds=-1)
    )
    stranger = await browser.new_context()
    page = await stranger.new_page()
    response = await page.goto(f"{base}/admin/login?token={expired}")
    assert response.status == 401
    assert await page.inner_text("#reason") == "This link has expired; ask for a new one."

    response = await page.goto(f"{base}/admin/jobs")
    assert response.status == 401
    assert "not signed in" in await page.inner_text("#reason")
    forged = await stranger.request.post(
        f"{base}/admin/users/{alice.id}/quota",
        form={"images": "1000", "period": "total", "csrf": "guess"},
    )
    assert forged.status == 401
    assert (await quotas.status(alice.id)).limit == 40

    link = login_link(web_run.bot.web, boss.id)
    admin = await _sign_in(browser, link)
    again = await stranger.new_page()
    await again.goto(link)
    await again.click("#sign-in")
    assert await again.inner_text("#reason") == "This link was already used; ask for a new one."

    # Signed in, but a form without the session's CSRF token changes nothing.
    stale = await admin.context.request.post(
        f"{base}/admin/users/{alice.id}/quota",
        form={"images": "1000", "period": "total", "csrf": "not-the-token"},
    )
    assert stale.status == 403
    assert (await quotas.status(alice.id)).limit == 40
    assert await AuditLog(web_run.storage.db).recent() == []

    # Bad input: the page says what is allowed, and nothing changes.
    await admin.goto(f"{base}/admin/users/{alice.id}")
    await admin.fill("#quota-form input[name=images]", "-3")
    await admin.click("#quota-form button")
    assert await admin.inner_text("#error") == (
        "images must be a whole number from 0 to 1000000; got '-3'"
    )
    assert (await quotas.status(alice.id)).limit == 40

    # A session past its time is refused like none.
    async with web_run.storage.db.write() as tx:
        await tx.conn.execute(
            update(web_sessions).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    response = await admin.goto(f"{base}/admin/users/{alice.id}")
    assert response.status == 401


async def test_imagine_admin_link_signs_the_operator_in(
    fake_discord: FakeDiscord,
    web_run: BotRun,
    browser: Any,
    alice: User,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _finished_job(fake_discord, web_run, alice, "operator's view")
    assert web_run.bot is not None and web_run.bot.web is not None
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(web_run.settings.data_dir))
    monkeypatch.setenv("IMAGINE_WEB_PORT", str(web_run.bot.web.port))
    assert main(["admin-link"]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith(f"http://localhost:{web_run.bot.web.port}/admin/login?token=")

    page = await _sign_in(browser, link)
    assert "signed in as the operator" in await page.inner_text("header")
    await page.goto(f"{_base(web_run)}/admin/moderation")
    await page.fill("input[name=word]", "forbidden")
    await page.click("text=Ban word")
    assert await page.inner_text("#done") == "Prompts containing “forbidden” are now refused."
    assert web_run.services is not None
    assert web_run.services.banned.find("something forbidden here") == "forbidden"
    assert web_run.storage is not None
    (entry,) = await AuditLog(web_run.storage.db).recent()
    assert (entry.admin_id, entry.via, entry.action) == (0, "dashboard", "word.add")
