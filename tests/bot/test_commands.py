"""``imagine bot``, ``imagine run`` and ``imagine doctor`` as a user runs them."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import IO

import pytest

from imagine.commands import doctor
from imagine.settings import Settings
from tests.bot.harness import ephemeral_reply
from tests.fakediscord import FakeDiscord

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "DISCORD_"))}


async def _imagine(
    *args: str, env: dict[str, str], stderr: IO[bytes] | int = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "imagine",
        *args,
        env={**CLEAN_ENV, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


@pytest.mark.parametrize("command", ["bot", "run"])
async def test_missing_token_is_one_clear_line_and_exit_2(command: str, tmp_path: Path) -> None:
    process = await _imagine(command, env={"IMAGINE_DATA_DIR": str(tmp_path / "data")})
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert stderr.decode().strip() == (
        "imagine: no Discord token; set IMAGINE_DISCORD_TOKEN (or DISCORD_TOKEN)"
    )
    assert stdout == b""


async def test_wrong_token_is_one_clear_line_and_exit_1(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    env = {
        **fake_discord.environ(),
        "IMAGINE_DISCORD_TOKEN": "wrong.token.value",
        "IMAGINE_DATA_DIR": str(tmp_path / "data"),
        "IMAGINE_LOG_LEVEL": "CRITICAL",
    }
    process = await _imagine("bot", env=env)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert stderr.decode().strip() == (
        "imagine: Discord refused the token (401 Unauthorized); check IMAGINE_DISCORD_TOKEN"
    )


@pytest.mark.slow
async def test_imagine_run_serves_end_to_end_and_stops_on_sigterm(
    fake_discord: FakeDiscord, tmp_path: Path, tiny_model_dir: Path
) -> None:
    alice = fake_discord.add_user("alice")
    env = {
        **fake_discord.environ(),
        "IMAGINE_DATA_DIR": str(tmp_path / "data"),  # fresh: `imagine run` migrates it
        "IMAGINE_MODEL": str(tiny_model_dir),
        "IMAGINE_LOG_LEVEL": "DEBUG",  # discord.py then logs every URL, tokens included
        "OMP_NUM_THREADS": "1",
    }
    # A file, not a pipe: the debug log is large and nobody reads a pipe until the end.
    log_file = (tmp_path / "stderr.log").open("wb")
    process = await _imagine("run", env=env, stderr=log_file)
    try:
        await fake_discord.wait_for(
            lambda: fake_discord.synced_commands(), timeout=120, what="commands synced"
        )
        await fake_discord.wait_until_connected(60)
        command = await fake_discord.invoke_command(
            "imagine", {"prompt": "a tiny boat --seed 1"}, user=alice
        )
        assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
        message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a tiny"))
        await fake_discord.wait_for(lambda: len(message.buttons) == 9, timeout=180, what="the grid")
        assert (tmp_path / "data" / "imagine.db").exists()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 120)
        log_file.close()
    log = (tmp_path / "stderr.log").read_text()
    assert process.returncode == 0, log[-2000:]
    assert "/interactions/" in log  # the debug log did show interaction URLs...
    assert command.token not in log, [ln for ln in log.splitlines() if command.token in ln][:3]
    assert fake_discord.token not in log


def _settings(tmp_path: Path, **environ: str) -> Settings:
    return Settings.load({"IMAGINE_DATA_DIR": str(tmp_path / "data"), **environ})


def test_doctor_all_good(
    tmp_path: Path, sqlite_template: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    shutil.copyfile(sqlite_template, tmp_path / "data" / "imagine.db")
    settings = _settings(
        tmp_path,
        IMAGINE_DISCORD_TOKEN="MTIz.Gh1.abc",
        IMAGINE_MODEL=str(tiny_model_dir),
    )
    assert doctor.run(argparse.Namespace(), settings) == 0
    out = capsys.readouterr().out
    assert "[ok]   Discord token: set (12 characters)" in out
    assert "[ok]   migrations: at the newest revision" in out
    assert f"[ok]   model: {tiny_model_dir} (a local diffusers model)" in out
    assert "MTIz.Gh1.abc" not in out
    assert out.rstrip().endswith("all good")


def test_doctor_reports_each_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "empty-model").mkdir()
    settings = _settings(tmp_path, IMAGINE_MODEL=str(tmp_path / "empty-model"))
    assert doctor.run(argparse.Namespace(), settings) == 1
    out = capsys.readouterr().out
    assert "[FAIL] Discord token: missing; set IMAGINE_DISCORD_TOKEN (or DISCORD_TOKEN)" in out
    assert "[FAIL] migrations: never applied; run `imagine migrate`" in out
    assert "has no model_index.json" in out
    assert out.rstrip().endswith("3 problems found")


async def test_unreachable_discord_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    env = {
        "IMAGINE_DISCORD_TOKEN": "some.bot.token",
        "IMAGINE_DISCORD_API_BASE": "http://127.0.0.1:9/api/v10",  # nothing listens there
        "IMAGINE_DATA_DIR": str(tmp_path / "data"),
        "IMAGINE_LOG_LEVEL": "CRITICAL",
    }
    process = await _imagine("bot", env=env)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("imagine: cannot start the bot against http://127.0.0.1:9/api/v10:")
