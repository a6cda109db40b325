"""The command line's own help: what a user reads before anything else."""

import pytest

from imagine.cli import main


def test_help_opens_with_a_sentence_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    usage, description = out.split("\n\n")[:2]
    assert usage.startswith("usage: imagine")
    assert " ".join(description.split()) == (
        "Midjourney-style image generation in Discord, on SDXL: run the bot and GPU workers, "
        "manage quotas, and try prompts and models locally."
    )
    assert "``" not in out and "imagine.commands" not in out
    for command in ("run", "bot", "worker", "migrate", "parse", "generate", "quota"):
        assert f"\n    {command} " in out
    assert "imagine COMMAND --help" in " ".join(out.split())
