"""Subprocess hygiene shared by every backend's workers.

Each checker process runs in its own session (so its own process group) under an
address-space limit, and is killed by group: a proof assistant that forks helpers (coqtop's
native compiler, Lean's lake) leaves nothing behind. Processes are never looked up by name.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RunAs:
    """An unprivileged user a checker process runs as (set when stp runs as root)."""

    uid: int
    gid: int


def run_as_user(spec: str) -> RunAs | None:
    """The user named by ``spec`` (a name or a numeric uid); None for ''. ValueError when the
    user does not exist or this process cannot switch to it (only root can)."""
    if not spec:
        return None
    try:
        entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
    except (KeyError, ValueError):
        raise ValueError(f"no such user: {spec!r}") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise ValueError(f"running checkers as {spec!r} needs stp to run as root")
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


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
    run_as: RunAs | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with a pipe for stdin, in a new process group, with an address-space
    limit, as ``run_as`` if given. By default stdout is a pipe and stderr is merged into it, so
    the two streams keep their order; ``stdout``/``stderr`` take what ``subprocess.Popen``
    takes (Lean's REPL writes to a terminal and keeps stderr apart)."""
    switch: dict[str, object] = {}
    if run_as is not None:
        switch = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
    return subprocess.Popen(  # type: ignore[call-overload]
        list(argv),
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_limit_address_space(memory_limit_mb),
        **switch,
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


def run_bounded(
    argv: Sequence[str],
    cwd: str | Path,
    memory_limit_mb: int,
    timeout_s: float,
    run_as: RunAs | None = None,
) -> tuple[int | None, str]:
    """Run ``argv`` to completion (``spawn``'s limits, no input): its exit status and its
    output, stdout and stderr merged; status None when it ran past ``timeout_s`` and its group
    was killed."""
    proc = spawn(argv, cwd, memory_limit_mb, run_as=run_as)
    try:
        output, _ = proc.communicate(b"", timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return None, ""
    except BaseException:
        kill_group(proc)
        raise
    return proc.returncode, output.decode("utf-8", "replace")


def program_found(program: str, cwd: Path) -> bool:
    """Whether ``program`` can start in ``cwd``: a bare name is looked up on PATH, a path is
    taken relative to ``cwd``, as ``subprocess`` does."""
    if "/" in program:
        return os.access(cwd / program, os.X_OK)
    return shutil.which(program) is not None
