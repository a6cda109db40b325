"""End to end with the S3 image store: a bot and a worker process that share no directory.

The bot runs in-process against the fake Discord; ``imagine worker`` runs as its own process
with its own, empty data dir. They share only the database and the S3 server, so a result can
reach Discord only through the bucket.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imagine.settings import Settings
from storage.contract import JobStatus
from tests.bot.harness import BotRun
from tests.fakediscord import FakeDiscord, User
from tests.s3server import S3Server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def s3_settings(bot_environ: dict[str, str], s3_environ: dict[str, str]) -> Settings:
    """The bot's settings with the S3 image store."""
    return Settings.load({**bot_environ, **s3_environ})


@pytest.fixture
async def s3_bot(s3_settings: Settings, fake_discord: FakeDiscord) -> AsyncIterator[BotRun]:
    """The real bot on the S3 store."""
    run = BotRun(s3_settings)
    try:
        await run.start(fake_discord)
        yield run
    finally:
        await run.stop()


@pytest.fixture
async def worker_process(
    s3_settings: Settings, s3_environ: dict[str, str], tiny_model_dir: Path, tmp_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``imagine worker`` on the bot's database and bucket, with a data dir of its own."""
    own_data = tmp_path / "worker-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_"))}
    env.update(
        s3_environ,
        IMAGINE_DATABASE_URL=s3_settings.database,
        IMAGINE_DATA_DIR=str(own_data),
        IMAGINE_MODEL=str(tiny_model_dir),
        IMAGINE_WORKER_ID="s3-worker",
        IMAGINE_POLL_INTERVAL="0.2",
        IMAGINE_LOG_LEVEL="WARNING",
        OMP_NUM_THREADS="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "imagine",
        "worker",
        env=env,
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()[-2000:]
        assert not (own_data / "images").exists()  # nothing went through the local disk


async def test_grid_and_u_button_come_from_the_bucket(
    fake_discord: FakeDiscord,
    s3_bot: BotRun,
    worker_process: asyncio.subprocess.Process,
    alice: User,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    assert s3_bot.storage is not None
    queue, images = s3_bot.storage.queue, s3_bot.storage.images
    await fake_discord.invoke_command("imagine", {"prompt": "a red fox --seed 7"}, user=alice)
    message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a red fox"))
    await fake_discord.wait_for(
        lambda: len(message.buttons) == 9 and bool(message.attachments),
        timeout=180,
        what="the grid",
    )
    assert message.content == f"**a red fox --seed 7** - <@{alice.id}> (fast)"

    (job,) = await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
    records = {record.index: record for record in await queue.images(job.id)}
    assert sorted(records) == [-1, 0, 1, 2, 3]
    keys = s3_server.keys(s3_bucket)
    for record in records.values():
        digest = record.sha256
        key = f"images/{digest[:2]}/{digest[2:4]}/{digest}.png"
        assert key in keys
        assert record.path == f"s3://{s3_bucket}/{key}"
    grid = s3_server.client().get_object(Bucket=s3_bucket, Key=records[-1].path.split("/", 3)[3])
    assert message.attachments[0].data == grid["Body"].read()

    # U3: image 3 alone, read back from the bucket by the bot.
    before = {m.id for m in fake_discord.channel_messages()}
    await (
        await fake_discord.click(message, message.button("U3").custom_id or "", user=alice)
    ).wait_acked()
    single = await fake_discord.wait_for(
        lambda: next((m for m in fake_discord.channel_messages() if m.id not in before), None)
    )
    assert single.content.endswith(f"Image #3 <@{alice.id}>")
    assert single.attachments[0].data == await images.get(records[2].sha256)
    fake_discord.assert_all_acked()
