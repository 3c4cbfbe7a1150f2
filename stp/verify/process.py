"""Subprocess hygiene shared by every backend's workers.

Each checker process runs in its own session (so its own process group) under an
address-space limit, and is killed by group: a proof assistant that forks helpers (coqtop's
native compiler, Lean's lake) leaves nothing behind. Processes are never looked up by name.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path


def _limit_address_space(memory_limit_mb: int) -> Callable[[], None]:
    limit = memory_limit_mb * 1024 * 1024

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def spawn(
    argv: Sequence[str],
    cwd: str | Path,
    memory_limit_mb: int,
    *,
    stdout: int = subprocess.PIPE,
    stderr: int = subprocess.STDOUT,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with a pipe for stdin, in a new process group, with an address-space
    limit. By default stdout is a pipe and stderr is merged into it, so the two streams keep
    their order; ``stdout``/``stderr`` take what ``subprocess.Popen`` takes (Lean's REPL
    writes to a terminal and keeps stderr apart)."""
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_limit_address_space(memory_limit_mb),
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process and everything in its group, then reap it."""
    with contextlib.suppress(ProcessLookupError):  # the group is already gone
        os.killpg(proc.pid, signal.SIGKILL)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    proc.wait()


def program_found(program: str, cwd: Path) -> bool:
    """Whether ``program`` can start in ``cwd``: a bare name is looked up on PATH, a path is
    taken relative to ``cwd``, as ``subprocess`` does."""
    if "/" in program:
        return os.access(cwd / program, os.X_OK)
    return shutil.which(program) is not None
