"""The S3 image store as operators meet it: start-up errors and ``imagine doctor``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import pytest

from imagine.commands import doctor
from imagine.settings import Settings
from tests.s3server import S3Server

CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "DISCORD_", "AWS_"))
}


async def imagine(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "imagine",
        *args,
        env={**CLEAN_ENV, "IMAGINE_LOG_LEVEL": "CRITICAL", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_worker_with_a_missing_bucket_exits_1_with_one_line(
    s3_server: S3Server, tmp_path: Path
) -> None:
    env = {**s3_server.environ("missing-bucket"), "IMAGINE_DATA_DIR": str(tmp_path / "data")}
    code, stderr = await imagine("worker", env=env)
    assert code == 1
    # (Earlier lines, if any, are library import notices; the error is the last line.)
    assert stderr.strip().splitlines()[-1] == (
        f"imagine worker: image store s3://missing-bucket at {s3_server.endpoint_url}: the bucket "
        "'missing-bucket' does not exist; create it, or fix IMAGINE_IMAGE_STORE / "
        "IMAGINE_S3_ENDPOINT_URL"
    )


async def test_bot_with_a_wrong_secret_exits_1_with_one_line_before_login(
    s3_environ: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **s3_environ,
        "AWS_SECRET_ACCESS_KEY": "wrong-secret",
        "IMAGINE_DISCORD_TOKEN": "some.bot.token",
        # Nothing listens there: an error about Discord would mean the store was not checked.
        "IMAGINE_DISCORD_API_BASE": "http://127.0.0.1:9/api/v10",
        "IMAGINE_DATA_DIR": str(tmp_path / "data"),
    }
    code, stderr = await imagine("bot", env=env)
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith("imagine: image store s3://")
    assert line.endswith(
        "the secret key does not match the access key; check AWS_SECRET_ACCESS_KEY"
    )
    assert "wrong-secret" not in line


def test_doctor_checks_the_bucket_and_the_credentials(
    s3_server: S3Server,
    s3_environ: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = {"IMAGINE_DATA_DIR": str(tmp_path / "data")}
    doctor.run(argparse.Namespace(), Settings.load({**s3_environ, **data}))
    out = capsys.readouterr().out
    store = s3_environ["IMAGINE_IMAGE_STORE"]
    assert (
        f"[ok]   image store: {store} at {s3_server.endpoint_url}: bucket found, "
        "credentials accepted"
    ) in out.splitlines()

    wrong = {**s3_environ, **data, "AWS_ACCESS_KEY_ID": "AKIANOBODY0000000000"}
    assert doctor.run(argparse.Namespace(), Settings.load(wrong)) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "image store" in line]
    assert lines == [
        f"[FAIL] image store: image store {store} at {s3_server.endpoint_url}: the object store "
        "does not accept the access key (InvalidAccessKeyId); check AWS_ACCESS_KEY_ID (and "
        "AWS_SESSION_TOKEN)"
    ]

    missing = {**s3_server.environ("not-created-yet"), **data}
    assert doctor.run(argparse.Namespace(), Settings.load(missing)) == 1
    assert "[FAIL] image store: image store s3://not-created-yet" in capsys.readouterr().out


def test_doctor_reports_the_file_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doctor.run(argparse.Namespace(), Settings.load({"IMAGINE_DATA_DIR": str(tmp_path / "d")}))
    assert f"[ok]   image store: files under {tmp_path / 'd' / 'images'}" in capsys.readouterr().out
