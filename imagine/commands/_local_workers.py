"""The ``imagine worker`` processes of this host, found through lock files in the data dir.

Each worker holds an exclusive ``flock`` on ``DATA_DIR/workers/<pid>.pid`` (its pid and worker
id) for as long as it runs; the kernel drops the lock when the process ends, however it ends.
A file whose lock can be taken is left over from a killed worker and is removed, so a pid that
the system has since given to another process is never signalled.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalWorker:
    """A running worker process."""

    pid: int
    worker_id: str
    path: Path


def _directory(data_dir: Path) -> Path:
    return Path(data_dir) / "workers"


@contextlib.contextmanager
def registered(data_dir: Path, worker_id: str) -> Iterator[Path]:
    """Hold this process's lock file while the block runs."""
    directory = _directory(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".new-")
    path = directory / f"{os.getpid()}.pid"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n{worker_id}\n".encode())
        # Renamed only once locked: a drain never sees the file unlocked while we live.
        os.replace(tmp, path)
        yield path
    finally:
        Path(tmp).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        os.close(fd)


def running(data_dir: Path) -> list[LocalWorker]:
    """The workers alive under ``data_dir`` (stale files are removed)."""
    found = []
    for path in sorted(_directory(data_dir).glob("*.pid")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid, _, worker_id = os.read(fd, 4096).decode().partition("\n")
                found.append(LocalWorker(int(pid), worker_id.strip(), path))
                continue
            path.unlink(missing_ok=True)  # nobody holds it: its worker is gone
        finally:
            os.close(fd)
    return found


def wait_until_gone(worker: LocalWorker, timeout: float) -> bool:
    """Block until the worker's process has ended (its lock is released), or ``timeout``."""
    try:
        fd = os.open(worker.path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    waiter = threading.Thread(target=fcntl.flock, args=(fd, fcntl.LOCK_EX), daemon=True)
    waiter.start()
    waiter.join(timeout)
    if waiter.is_alive():
        return False  # the descriptor stays with the blocked thread until this process exits
    os.close(fd)
    return True


def drain(data_dir: Path, worker_id: str | None, timeout: float) -> int:
    """Ask the workers here (or the one named) to drain; wait for them to exit. Exit status."""
    workers = [w for w in running(data_dir) if worker_id in (None, w.worker_id)]
    if not workers:
        which = f"worker {worker_id}" if worker_id else "worker"
        print(f"no {which} is running under {_directory(data_dir)}; nothing to drain")
        return 0
    for worker in workers:
        os.kill(worker.pid, signal.SIGTERM)
        print(f"draining worker {worker.worker_id} (pid {worker.pid})", flush=True)
    deadline = time.monotonic() + timeout
    late = []
    for worker in workers:
        if wait_until_gone(worker, max(0.0, deadline - time.monotonic())):
            print(f"worker {worker.worker_id} (pid {worker.pid}) finished and exited", flush=True)
        else:
            late.append(worker)
    for worker in late:
        print(
            f"imagine worker --drain: worker {worker.worker_id} (pid {worker.pid}) is still "
            f"finishing after {timeout:g} s; it exits when its job is done",
            file=sys.stderr,
        )
    return 1 if late else 0
