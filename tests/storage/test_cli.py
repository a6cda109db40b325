"""``imagine migrate`` and ``imagine quota`` through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from storage.migrate import current_revision, head_revision

ROOT = Path(__file__).resolve().parents[2]


def _imagine(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), **environ}
    return subprocess.run(
        [sys.executable, "-m", "imagine", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_then_quota_set_show_reset(empty_database_url: str, tmp_path: Path) -> None:
    environ = {"IMAGINE_DATABASE_URL": empty_database_url, "IMAGINE_DATA_DIR": str(tmp_path)}
    refused = _imagine("quota", "show", "42", environ=environ)
    assert refused.returncode == 1
    assert "run `imagine migrate`" in refused.stderr

    first = _imagine("migrate", environ=environ)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from an empty database to {head_revision()}" in first.stdout
    assert current_revision(empty_database_url) == head_revision()
    again = _imagine("migrate", environ=environ)
    assert "already at the newest schema" in again.stdout

    shown = _imagine("quota", "set", "42", "--images", "5", "--period", "week", environ=environ)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:4] == [
        "user: 42",
        "limit: 5 images per week (own limit)",
        "used: 0",
        "left: 5",
    ]
    assert "running: 0 (at most 3)" in lines and "lifetime images: 0" in lines
    assert lines[-1] == "gpu time: 0.0 s"

    show = _imagine("quota", "show", "42", environ=environ)
    assert show.returncode == 0 and show.stdout == shown.stdout
    reset = _imagine("quota", "reset", "42", environ=environ)
    assert reset.returncode == 0 and "left: 5" in reset.stdout


def test_quota_bad_input_is_one_clear_line(database_environ: dict[str, str]) -> None:
    negative = _imagine(
        "quota", "set", "42", "--images", "-3", "--period", "day", environ=database_environ
    )
    assert negative.returncode == 2
    assert negative.stderr.strip() == (
        "imagine quota: image limit must be a whole number from 0 to 1000000, got -3"
    )
    # Too large for the database's columns: the same bound and message on both databases,
    # never a traceback or "cannot reach the database".
    for args, message in (
        (
            ("set", "42", "--images", "99999999999", "--period", "day"),
            "image limit must be a whole number from 0 to 1000000, got 99999999999",
        ),
        (
            ("show", "99999999999999999999"),
            "user id must be a positive Discord id, got 99999999999999999999 "
            "(at most 9223372036854775807)",
        ),
        (
            ("set", "-7", "--images", "5", "--period", "day"),
            "user id must be a positive Discord id, got -7 (at most 9223372036854775807)",
        ),
    ):
        result = _imagine("quota", *args, environ=database_environ)
        assert (result.returncode, result.stderr.strip()) == (2, f"imagine quota: {message}")
        assert result.stdout == ""
    unknown = _imagine("quota", "reset", "43", environ=database_environ)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "imagine quota: User 43 has never used the bot."
    shown = _imagine("quota", "show", "42", environ=database_environ)
    assert "limit: 200 images per day (server default)" in shown.stdout


def test_migrate_reports_an_unreachable_database(tmp_path: Path) -> None:
    environ = {
        "IMAGINE_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing",
        "IMAGINE_DATA_DIR": str(tmp_path),
    }
    result = _imagine("migrate", environ=environ)
    assert result.returncode == 1
    assert result.stderr.startswith("imagine migrate: cannot migrate the database:")
    assert "Traceback" not in result.stderr
