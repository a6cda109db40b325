"""Many hosts for real: one bot and two workers that share only PostgreSQL and the S3 server.

The bot is an ``imagine bot`` process connected to the fake Discord; each worker is an
``imagine worker`` process on the tiny SDXL; every host has a data directory of its own. Three
users send 20 ``/imagine`` commands
(each user's all at once, one user after another, so a first-come queue would run all of
Alice's before any of Carol's). One worker is killed with SIGKILL while it holds a job; its
lease runs out and the other worker paints the job. Every job is delivered exactly once, each
user is charged exactly once per job, and the claims take turns between the users.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from imagine.settings import Settings
from storage.bundle import Storage, open_storage
from storage.tables import jobs, ledger
from tests.bot.harness import ephemeral_reply, eventually
from tests.fakediscord import FakeDiscord, User
from tests.s3server import S3Server

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 5
# Enough steps that a job stays in a worker's hands for most of a second.
STEPS = 20
# Host A is killed once this many results are out (and it holds a job).
KILL_AFTER = 8
PLAN = {"alice": 7, "bob": 7, "carol": 6}
QUOTA = 100
COST = 4  # a grid
RUN_TIMEOUT = 150.0


@pytest.fixture
def shared_environ(postgres_url: str, s3_environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """What every host is configured with: the database, the bucket, the queue's timings."""
    return {
        **s3_environ,
        "IMAGINE_DATABASE_URL": postgres_url,
        "IMAGINE_LEASE_SECONDS": str(LEASE_SECONDS),
        "IMAGINE_POLL_INTERVAL": "0.5",
        "IMAGINE_QUOTA_IMAGES": str(QUOTA),
        "IMAGINE_QUOTA_PERIOD": "day",
    }


@dataclass
class Host:
    """An ``imagine bot`` or ``imagine worker`` process with its own data dir; its log goes to a
    file."""

    name: str
    data_dir: Path
    log_path: Path
    command: str = "worker"
    process: asyncio.subprocess.Process | None = None

    async def start(self, environ: dict[str, str]) -> None:
        """Start the process."""
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "imagine",
                self.command,
                env={**environ, "IMAGINE_DATA_DIR": str(self.data_dir)},
                cwd=ROOT,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    def tail(self) -> str:
        """The end of the process's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-3000:]

    async def stop(self) -> int | None:
        """SIGTERM (drain) if it still runs; its exit status."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 60)

    async def kill(self) -> None:
        """SIGKILL whatever still runs."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
def host_environ(shared_environ: dict[str, str]) -> dict[str, str]:
    """The process environment every host starts from: the shared settings, no stray ones."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_"))}
    return {**base, **shared_environ, "IMAGINE_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": "1"}


@dataclass
class BotHost:
    """The bot's process, and the shared storage the test reads what happened from."""

    host: Host
    storage: Storage


@pytest.fixture
async def bot(
    host_environ: dict[str, str], fake_discord: FakeDiscord, tmp_path: Path
) -> AsyncIterator[BotHost]:
    """The bot host, connected to the fake Discord with its commands synced."""
    host = Host("bot", tmp_path / "bot-host", tmp_path / "bot.log", command="bot")
    environ = {**host_environ, **fake_discord.environ()}
    storage = await open_storage(Settings.load(environ).storage())
    try:
        await host.start(environ)
        await fake_discord.wait_for(
            lambda: fake_discord.synced_commands(), timeout=120, what="commands synced"
        )
        await fake_discord.wait_until_connected(60)
        yield BotHost(host, storage)
        assert await host.stop() == 0, host.tail()
    finally:
        await host.kill()
        await storage.close()


@pytest.fixture
def worker_environ(host_environ: dict[str, str], tiny_model_dir: Path) -> dict[str, str]:
    """The process environment of a worker host, less its own id."""
    return {**host_environ, "IMAGINE_MODEL": str(tiny_model_dir)}


@pytest.fixture
async def worker_hosts(tmp_path: Path) -> AsyncIterator[list[Host]]:
    """Two worker hosts (not started); whatever still runs is killed afterwards."""
    hosts = [
        Host(name, tmp_path / f"{name}-data", tmp_path / f"{name}.log")
        for name in ("host-a", "host-b")
    ]
    yield hosts
    for host in hosts:
        await host.kill()


async def _job_rows(bot: BotHost) -> list[Any]:
    async with bot.storage.db.read() as conn:
        return list((await conn.execute(select(jobs).order_by(jobs.c.id))).mappings())


async def _ledger_rows(bot: BotHost) -> list[Any]:
    async with bot.storage.db.read() as conn:
        return list((await conn.execute(select(ledger).order_by(ledger.c.id))).mappings())


def _largest_gap(order: list[int], totals: dict[int, int]) -> int:
    """The largest difference between two users' claim counts over every prefix of ``order``,
    among the users that still had jobs to claim at that point."""
    counts: Counter[int] = Counter()
    gap = 0
    for user_id in order:
        counts[user_id] += 1
        waiting = [u for u in totals if counts[u] < totals[u]]
        if len(waiting) >= 2:
            gap = max(gap, max(counts[u] for u in waiting) - min(counts[u] for u in waiting))
    return gap


async def test_two_worker_hosts_one_killed_every_job_delivered_and_charged_once(
    fake_discord: FakeDiscord,
    bot: BotHost,
    worker_hosts: list[Host],
    worker_environ: dict[str, str],
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    users = {name: fake_discord.add_user(name) for name in PLAN}
    by_id: dict[int, User] = {user.id: user for user in users.values()}

    # Every command is queued before the workers come up, so the claim order shows the queue's
    # fairness and not the order the commands arrived in.
    prompts: dict[str, int] = {}
    for name, count in PLAN.items():
        for n in range(1, count + 1):
            prompt = f"{name} painting {n} --seed {n} --steps {STEPS}"
            prompts[prompt] = users[name].id
            command = await fake_discord.invoke_command(
                "imagine", {"prompt": prompt}, user=users[name]
            )
            await command.wait_acked()
    job_messages = await fake_discord.wait_for(
        lambda: (
            found
            if len(
                found := [
                    m for m in fake_discord.channel_messages() if "(Waiting to start)" in m.content
                ]
            )
            == len(prompts)
            else None
        ),
        timeout=30,
        what="20 queued job messages",
    )
    assert sorted(m.content.split("**")[1] for m in job_messages) == sorted(prompts)

    for host in worker_hosts:
        await host.start({**worker_environ, "IMAGINE_WORKER_ID": host.name})
    victim, survivor = worker_hosts

    # Kill host A while it holds a job, once both hosts have delivered results.
    async def victim_holds_a_job() -> list[int] | None:
        rows = await _job_rows(bot)
        done = Counter(row["lease_owner"] for row in rows if row["status"] == "succeeded")
        held = [
            row["id"]
            for row in rows
            if row["status"] == "running" and row["lease_owner"] == victim.name
        ]
        ready = done.total() >= KILL_AFTER and done[victim.name] >= 2 and done[survivor.name]
        return held if ready and held else None

    await eventually(victim_holds_a_job, within=RUN_TIMEOUT, every=0.05)
    assert victim.process is not None
    killed_at = datetime.now(UTC)
    victim.process.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(victim.process.wait(), 10) == -signal.SIGKILL
    orphaned = [
        row["id"]
        for row in await _job_rows(bot)
        if row["status"] == "running" and row["lease_owner"] == victim.name
    ]
    assert orphaned, "host A was killed holding no job"

    # Every result reaches Discord: each job message becomes its grid with the buttons.
    await fake_discord.wait_for(
        lambda: all(m.attachments and len(m.buttons) == 9 for m in job_messages),
        timeout=RUN_TIMEOUT,
        what="every grid",
    )
    assert await survivor.stop() == 0, survivor.tail()

    rows = await _job_rows(bot)
    assert [row["status"] for row in rows] == ["succeeded"] * len(prompts), survivor.tail()
    assert all(row["delivered_at"] is not None for row in rows)
    for row in rows:
        if row["id"] in orphaned:
            # Painted again by host B after host A's lease ran out.
            assert (row["lease_owner"], row["attempts"]) == (survivor.name, 2)
        else:
            assert row["attempts"] == 1, row
    assert {row["lease_owner"] for row in rows} == {victim.name, survivor.name}

    # Delivered exactly once: one message per job, edited into its grid by a single upload
    # (the other uploads are progress previews), and no result posted anywhere else.
    assert len({row["message_id"] for row in rows}) == len(prompts)
    assert {m.id for m in job_messages} == {row["message_id"] for row in rows}
    results = Counter(
        (request.method, request.path.rsplit("/", 1)[1], name)
        for request in fake_discord.requests
        if request.status == 200
        for name, _ in request.files
        if name != "preview.jpg"
    )
    assert results == Counter(
        {("PATCH", str(row["message_id"]), f"imagine_{row['id']}.png"): 1 for row in rows}
    ), results
    for message in job_messages:
        prompt = message.content.split("**")[1]
        owner = by_id[prompts[prompt]]
        assert message.content == f"**{prompt}** - <@{owner.id}> (fast)"
        assert len(message.attachments) == 1
    # The grids came through the bucket: every image row names an object in it, the posted
    # grid is the grid object's bytes, and no host kept an image on its own disk.
    keys = set(s3_server.keys(s3_bucket))
    client = s3_server.client()
    posted = {m.id: m.attachments[0].data for m in job_messages}
    for row in rows:
        records = {r.index: r for r in await bot.storage.queue.images(row["id"])}
        assert sorted(records) == [-1, 0, 1, 2, 3]
        assert all(r.path.split("/", 3)[3] in keys for r in records.values())
        grid = client.get_object(Bucket=s3_bucket, Key=records[-1].path.split("/", 3)[3])
        assert posted[row["message_id"]] == grid["Body"].read()
    for data_dir in (bot.host.data_dir, victim.data_dir, survivor.data_dir):
        assert not (data_dir / "images").exists()

    # Charged exactly once per job: one reservation of a grid each, nothing refunded, and each
    # user's /info says so.
    entries = await _ledger_rows(bot)
    assert sorted((e["job_id"], e["kind"], e["amount"]) for e in entries) == sorted(
        (row["id"], "reserve", COST) for row in rows
    )
    for name, count in PLAN.items():
        info = await fake_discord.invoke_command("info", user=users[name])
        text = await ephemeral_reply(fake_discord, info)
        assert f"Quota: {count * COST} of {QUOTA} images used per day" in text, text

    # Fair claims: while both hosts serve (from the later one's first claim to the kill), the
    # users take turns; a first-come queue would give all of them to Alice. A job's claim time
    # is its last claim, so the jobs that ran twice are left out. (After the kill the orphaned
    # jobs count as their owner's running jobs until their lease is reaped, so that user rightly
    # waits behind the others for a while.)
    first_runs = [row for row in rows if row["id"] not in orphaned]
    both_serving = max(
        min(row["started_at"] for row in first_runs if row["lease_owner"] == host.name)
        for host in worker_hosts
    )
    window = [
        row["user_id"]
        for row in sorted(first_runs, key=lambda row: row["started_at"])
        if both_serving <= row["started_at"] < killed_at
    ]
    names = [by_id[u].name for u in window]
    assert len(window) >= 4, names
    assert _largest_gap(window, {users[name].id: count for name, count in PLAN.items()}) <= 2, names
    fake_discord.assert_all_acked()
