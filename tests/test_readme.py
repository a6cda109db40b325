"""README.md opens with the commands that CI runs; they must not drift apart."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _command_after(marker: str) -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    return lines[lines.index(marker) + 1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = _command_after("# run the tests")
    assert command.startswith("python3 -m venv .venv")
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci_lines


def test_service_command_sets_up_and_runs_imagine() -> None:
    command = _command_after("# run the service (bot + worker in one process, SQLite under ./data)")
    assert command.startswith("python3 -m venv .venv")
    assert command.endswith(".venv/bin/imagine run")
