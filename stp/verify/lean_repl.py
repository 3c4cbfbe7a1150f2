"""One Lean REPL process and the wire protocol it speaks.

    repl = LeanRepl(["lake", "exe", "repl"], cwd="lean_project", memory_limit_mb=8192)
    repl.request({"cmd": "import Mathlib"}, timeout=600)            # -> {"env": 0}
    repl.request({"cmd": "theorem t : 1 + 1 = 2 := by norm_num", "env": 0}, timeout=20)
    repl.close()

A request is one line of JSON followed by a blank line: the REPL reads lines up to a blank one
and joins them without separators, so a raw newline inside a request would corrupt it, and a
stray blank line is parsed as an (invalid) request, which kills the process. A response is
pretty-printed JSON followed by a blank line.

The REPL's standard output is a pseudo-terminal in raw mode, not a pipe: REPL revisions before
leanprover-community/repl#49 (July 2024), including the Lean 4.9 one the benchmarks need, never
flush, and C stdio only line-buffers a terminal. Raw mode keeps the bytes as written (no echo,
no CR/LF translation). Standard input stays a pipe, so requests have no line-length limit.

Anything unexpected is a crash: end of output or a response that is not JSON. Standard error
is not part of the protocol (Lake prints its warnings there, and the runtime its out-of-memory
messages): it is kept, the last ``_STDERR_KEPT`` bytes, for the caller to read (``stderr``, and
in the message of a crash) and never decides an answer. Output that does not line up with the requests is ``ReplDesynchronised``: a
byte waiting before a request is sent, a byte after an answer, a command's answer whose ``env``
is not the next one (the REPL numbers environments 0, 1, 2, ... in the order it creates them,
one per command, errors included). Code run inside the REPL (an elaborator a proof defines)
writes to the same output and could print an answer of its own ahead of the real one; these
checks catch such an answer unless it is a perfect forgery, which is why the caller retires
the process on any of them and does not rely on the REPL alone. The process runs in its own session (so its own process group) under an
address-space limit (``stp.verify.process``); ``close`` kills the whole group, which also
reaches the REPL binary that ``lake exe`` starts as a child.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import selectors
import subprocess
import time
import tty
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stp.verify.process import RunAs, kill_group, spawn

_READ_CHUNK = 1 << 16
_END_OF_RESPONSE = b"\n\n"
_STDERR_KEPT = 4096


class ReplCrashed(Exception):
    """The REPL died or answered something that is not a response. ``returncode``: its exit
    status when it died (negative: the signal that killed it), else None."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class ReplDesynchronised(ReplCrashed):
    """The REPL's output does not line up with the requests: bytes between answers, or an
    answer with an unexpected ``env``. ``before_request``: found before this request was sent,
    so it belongs to an earlier one."""

    def __init__(self, message: str, *, before_request: bool) -> None:
        super().__init__(message)
        self.before_request = before_request


class ReplTimedOut(Exception):
    """The REPL did not answer within the time limit (the process is left for ``close``)."""


def encode_request(payload: dict[str, Any]) -> bytes:
    """``payload`` as the REPL reads it: one line of JSON, then a blank line.

    Non-ASCII text is sent as UTF-8 rather than ``\\u`` escapes: Lean's JSON parser reads
    a ``\\u`` escape as one UTF-16 unit, which breaks characters outside the BMP (𝓝, 𝔼)."""
    line = json.dumps(payload, ensure_ascii=False)
    assert "\n" not in line, "json.dumps escapes every newline inside strings"
    return (line + "\n\n").encode("utf-8")


class LeanRepl:
    """A running REPL process. Not thread-safe: one request at a time."""

    def __init__(
        self,
        argv: Sequence[str],
        cwd: str | Path,
        memory_limit_mb: int,
        run_as: RunAs | None = None,
    ) -> None:
        master, terminal = pty.openpty()
        tty.setraw(terminal)
        try:
            self._proc = spawn(
                argv,
                cwd,
                memory_limit_mb,
                stdout=terminal,
                stderr=subprocess.PIPE,
                run_as=run_as,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(terminal)
        self._stdout = master
        assert self._proc.stdin is not None and self._proc.stderr is not None
        self._stdin = self._proc.stdin.fileno()
        self._stderr = self._proc.stderr.fileno()
        os.set_blocking(self._stdin, False)
        self._buffer = b""
        self._reaped = False
        self._closed = False
        self._next_env = 0  # the env the REPL gives its next command
        self.stderr = ""  # what it wrote on standard error since the last request was sent

    @property
    def pid(self) -> int:
        """Process id of the launched command, which is also its process group id."""
        return self._proc.pid

    def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and return the parsed response.

        Raises ``ReplTimedOut`` after ``timeout`` seconds, ``ReplDesynchronised`` on output
        that does not line up with the requests, and ``ReplCrashed`` on end of output or
        output that is not a JSON object."""
        if self._closed or self._reaped:
            raise ReplCrashed("the REPL is no longer running")
        self.check_quiet(before_request=True)
        self.stderr = ""
        response = self._exchange(encode_request(payload), timeout)
        if "cmd" in payload and "env" in response:
            if response["env"] != self._next_env:
                raise ReplDesynchronised(
                    f"answer with env {response['env']!r}, expected {self._next_env}",
                    before_request=False,
                )
            self._next_env += 1
        return response

    def check_quiet(self, *, before_request: bool = False) -> None:
        """Raise ``ReplDesynchronised`` if the REPL wrote anything no request asked for: bytes
        left after the last answer or waiting unread on its output (standard error is read
        into ``stderr``)."""
        self._read_stderr()
        if select.select([self._stdout], [], [], 0)[0]:
            self._read_stdout()  # one read is enough: any byte is one too many
        if self._buffer.strip():
            raise ReplDesynchronised(
                f"REPL wrote outside an answer: {self._buffer[:200]!r}",
                before_request=before_request,
            )

    def _exchange(self, pending: bytes, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._stdout, selectors.EVENT_READ)
            selector.register(self._stderr, selectors.EVENT_READ)
            selector.register(self._stdin, selectors.EVENT_WRITE)
            while True:
                response = self._take_response()
                if response is not None:
                    self._read_stderr()  # what it wrote just before the answer goes with it
                    if self._buffer.strip():  # one request, one answer: nothing after it
                        raise ReplDesynchronised(
                            f"REPL wrote more than one answer: {self._buffer[:200]!r}",
                            before_request=False,
                        )
                    return response
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ReplTimedOut(f"no response within {timeout:g} s")
                for key, _ in selector.select(remaining):
                    if key.fd == self._stdin:
                        pending = self._write_some(pending)
                        if not pending:
                            selector.unregister(self._stdin)
                    elif key.fd == self._stderr:
                        self._read_stderr()
                    else:
                        self._read_stdout()

    def _read_stderr(self) -> None:
        """Move what is waiting on standard error into ``stderr`` (its last bytes); one read,
        so that a process writing without end cannot hold the caller past its deadline."""
        if select.select([self._stderr], [], [], 0)[0]:
            chunk = os.read(self._stderr, _READ_CHUNK)
            if not chunk:  # end of stream: the process is gone
                self._raise_ended()
            text = self.stderr + chunk.decode("utf-8", "replace")
            self.stderr = text[-_STDERR_KEPT:]

    def _raise_ended(self) -> None:
        self._kill_and_reap()  # whatever is left of the group; then the exit status is known
        with contextlib.suppress(OSError):  # its last words, when it died of something
            if select.select([self._stderr], [], [], 0)[0]:
                text = self.stderr + os.read(self._stderr, _READ_CHUNK).decode("utf-8", "replace")
                self.stderr = text[-_STDERR_KEPT:]
        raise ReplCrashed(
            f"REPL ended its output (exit status {self._proc.returncode})"
            + (f" after: {self._buffer[:200]!r}" if self._buffer.strip() else "")
            + (f"; stderr: {self.stderr.strip()[-500:]}" if self.stderr.strip() else ""),
            self._proc.returncode,
        )

    def _kill_and_reap(self) -> None:
        """Kill the process group and reap the leader, once: after the reap its pid (= the
        group id) may belong to an unrelated process, so it must not be signalled again."""
        if not self._reaped:
            self._reaped = True
            kill_group(self._proc)

    def _write_some(self, pending: bytes) -> bytes:
        try:
            written = os.write(self._stdin, pending)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ReplCrashed(f"REPL closed its input ({exc})") from exc
        return pending[written:]

    def _read_stdout(self) -> None:
        try:
            chunk = os.read(self._stdout, _READ_CHUNK)
        except OSError:  # EIO: every holder of the terminal's other end has exited
            chunk = b""
        if not chunk:
            self._raise_ended()
        self._buffer += chunk

    def _take_response(self) -> dict[str, Any] | None:
        """The first complete response in the buffer, removed from it; None if there is none."""
        end = self._buffer.find(_END_OF_RESPONSE)
        if end == -1:
            return None
        text, self._buffer = self._buffer[:end], self._buffer[end + len(_END_OF_RESPONSE) :]
        try:
            response = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReplCrashed(f"REPL answered something that is not JSON: {text[:200]!r}") from exc
        if not isinstance(response, dict):
            raise ReplCrashed(f"REPL answered JSON that is not an object: {text[:200]!r}")
        return response

    def close(self) -> None:
        """Kill the process group and reap the process. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._kill_and_reap()
        os.close(self._stdout)
