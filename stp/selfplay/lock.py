"""One ``stp round`` per run at a time: a file lock with its holder written beside it.

The lock is an OS-level lock (``filelock``), so it is released when the holder dies, even by
SIGKILL; the ``.owner`` file only says who holds it, for the message a second invocation prints.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from stp.errors import RunLockedError


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/run.lock`` for the duration; fail at once if someone else holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run.lock"
    owner = run_dir / "run.lock.owner"
    lock = filelock.FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        try:
            holder = json.loads(owner.read_text())
            who = f"pid {holder['pid']} on {holder['host']} since {holder['since']}"
        except (OSError, ValueError, KeyError):
            who = "another process"
        raise RunLockedError(
            f"run {run_dir} is in use by {who}; wait for it to finish or stop that process"
        ) from None
    try:
        owner.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
        )
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
