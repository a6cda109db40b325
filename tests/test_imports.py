"""The bot image stays slim, and dependencies point one way.

Importing the bot and storage never loads torch or the worker; nothing below ``imagine`` (the
composition root) imports it; the worker never imports the bot.
"""

import subprocess
import sys


def test_bot_and_storage_do_not_import_torch_or_worker() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "import bot, storage\n"
        "for pkg in (bot, storage):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'diffusers', 'transformers', 'gpu_worker', 'imagine'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"bot/storage imported heavy modules: {out}"


def test_worker_imports_neither_the_bot_nor_the_composition_root() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "import gpu_worker\n"
        "for m in pkgutil.walk_packages(gpu_worker.__path__, 'gpu_worker.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('bot', 'imagine'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"gpu_worker imported: {out}"


def test_doctor_runs_on_a_bot_host_without_torch() -> None:
    code = (
        "import sys\n"
        "import imagine.cli, imagine.commands.doctor\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'diffusers', 'transformers'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"imagine doctor imported heavy modules: {out}"
