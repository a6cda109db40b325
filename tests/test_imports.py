"""The bot image stays slim: importing the bot and storage never loads torch or the worker."""

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
        "('torch', 'diffusers', 'transformers', 'gpu_worker'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"bot/storage imported heavy modules: {out}"
