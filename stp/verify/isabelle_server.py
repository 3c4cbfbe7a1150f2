"""One Isabelle server process, one connection to it, and the protocol it speaks.

    server = IsabelleServer(["isabelle"], cwd=".", memory_limit_mb=16384, timeout=60)
    session = server.task("session_start", {"session": "HOL"}, timeout=600)["session_id"]
    result = server.task("use_theories", {"session_id": session, "theories": ["Foo"],
                                          "master_dir": "/tmp/job"}, timeout=20)
    server.close()

The protocol (Isabelle system manual, chapter "The Isabelle server"): ``isabelle server -n
NAME`` prints ``server "NAME" = HOST:PORT (password "PW")`` as its first line and listens on
that TCP socket. A client sends the password as its first line and gets ``OK {...}`` with the
Isabelle version. A command is one line ``name argument`` (the argument is JSON); a
synchronous command answers ``OK result`` or ``ERROR result``; an asynchronous one answers
``OK {"task": ID}`` at once and later ``FINISHED {"task": ID, ...}`` or ``FAILED {...}``, with
``NOTE`` messages in between. A message is either a single line, or a line holding only its
byte length followed by that many bytes.

The server runs in its own session (so its own process group: the JVM and the Poly/ML
process it starts) under an address-space limit (``stp.verify.process``); ``close`` kills the
whole group. Anything unexpected is ``ServerCrashed``: a closed socket, a reply that is not
``name JSON``, ``FAILED`` for a task. A reply that does not come in time is ``ServerTimedOut``.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stp.verify.process import kill_group, spawn

_READ_CHUNK = 1 << 16
_POLL_S = 0.05
_SERVER_LINE = re.compile(
    r'server "(?P<name>[^"]*)" = (?P<host>[^\s:]+):(?P<port>\d+) \(password "(?P<password>[^"]*)"\)'
)
_REPLY = re.compile(r"(?P<name>[A-Za-z0-9_.]*)\s*(?P<argument>.*)", re.DOTALL)


class ServerCrashed(Exception):
    """The server died, closed the connection, or answered something unexpected."""


class ServerTimedOut(Exception):
    """No answer within the time limit (the process is left for ``close``)."""


class TaskFailed(Exception):
    """An asynchronous command ended with ``FAILED``; ``payload`` is its JSON argument."""

    def __init__(self, command: str, payload: dict[str, Any]) -> None:
        super().__init__(f"{command} failed: {payload.get('message', payload)}")
        self.payload = payload


def encode_command(name: str, argument: Any) -> bytes:
    """One command as the server reads it: ``name JSON`` on one line (JSON escapes every
    newline inside strings), so no length prefix is needed."""
    line = f"{name} {json.dumps(argument, ensure_ascii=False)}" if argument is not None else name
    assert "\n" not in line
    return (line + "\n").encode("utf-8")


def parse_reply(message: bytes) -> tuple[str, Any]:
    """``(name, argument)`` of one server message; the argument is parsed JSON, or None when
    the message has none."""
    text = message.decode("utf-8").strip("\r\n")
    match = _REPLY.fullmatch(text)
    assert match is not None  # the pattern matches every string
    name, argument = match.group("name"), match.group("argument").strip()
    if not name:
        raise ServerCrashed(f"server reply without a name: {text[:200]!r}")
    if not argument:
        return name, None
    try:
        return name, json.loads(argument)
    except json.JSONDecodeError as exc:
        raise ServerCrashed(f"server reply is not JSON: {text[:200]!r}") from exc


class _Connection:
    """Byte messages over one socket: short (one line) or long (a length line, then bytes)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def send(self, data: bytes, deadline: float) -> None:
        self._sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            self._sock.sendall(data)
        except TimeoutError as exc:
            raise ServerTimedOut("the server stopped reading") from exc
        except OSError as exc:
            raise ServerCrashed(f"connection lost while sending: {exc}") from exc

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServerTimedOut("no answer in time")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(_READ_CHUNK)
        except TimeoutError as exc:
            raise ServerTimedOut("no answer in time") from exc
        except OSError as exc:
            raise ServerCrashed(f"connection lost: {exc}") from exc
        if not chunk:
            raise ServerCrashed("the server closed the connection")
        self._buffer += chunk

    def receive(self, deadline: float) -> bytes:
        """The next message, without its line terminator. Empty lines are skipped: a long
        message may or may not be followed by a line terminator."""
        line = b""
        while not line:
            while (end := self._buffer.find(b"\n")) == -1:
                self._fill(deadline)
            line, self._buffer = self._buffer[:end].rstrip(b"\r"), self._buffer[end + 1 :]
        if not line.isdigit():
            return line
        size = int(line)
        while len(self._buffer) < size:
            self._fill(deadline)
        message, self._buffer = self._buffer[:size], self._buffer[size:]
        return message.rstrip(b"\r\n")

    def close(self) -> None:
        self._sock.close()


class IsabelleServer:
    """A running ``isabelle server`` and one connection to it. Not thread-safe: one command
    at a time."""

    def __init__(
        self,
        isabelle: Sequence[str],
        cwd: str | Path,
        memory_limit_mb: int,
        timeout: float,
        log: Path,
    ) -> None:
        # A fresh name: `isabelle server` would otherwise join a server already running under
        # it (the per-user database of servers remembers them), whose state is not ours.
        name = f"stp-{uuid.uuid4().hex[:12]}"
        # Output goes to a file, not a pipe: nobody reads the server's output after its first
        # line, and a full pipe would stall it.
        self._log = log
        with log.open("wb") as out:
            self._proc = spawn(
                [*isabelle, "server", "-n", name], cwd, memory_limit_mb, stdout=out.fileno()
            )
        self._reaped = False
        self._connection: _Connection | None = None
        self.version = ""
        try:
            deadline = time.monotonic() + timeout
            host, port, password = self._read_address(deadline)
            sock = socket.create_connection((host, port), timeout=timeout)
            self._connection = _Connection(sock)
            self._connection.send((password + "\n").encode("utf-8"), deadline)
            reply, greeting = parse_reply(self._connection.receive(deadline))
            if reply != "OK" or not isinstance(greeting, dict):
                raise ServerCrashed(f"the server refused the connection: {reply} {greeting}")
            self.version = str(greeting.get("isabelle_name") or greeting.get("isabelle_id", ""))
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        """Process id of the launcher, which is also its process group id."""
        return self._proc.pid

    def output(self) -> str:
        """The end of what the server printed: for error messages."""
        try:
            return self._log.read_bytes()[-2000:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def _read_address(self, deadline: float) -> tuple[str, int, str]:
        """Host, port and password from the server's first line of output."""
        while True:
            text = self._log.read_bytes().decode("utf-8", "replace")
            for line in text.splitlines():
                if match := _SERVER_LINE.search(line):
                    return match.group("host"), int(match.group("port")), match.group("password")
            if self._proc.poll() is not None:
                raise ServerCrashed(
                    f"the server exited (status {self._proc.returncode}) before printing its "
                    f"address: {self.output()!r}"
                )
            if time.monotonic() > deadline:
                raise ServerTimedOut(f"the server printed no address in time: {self.output()!r}")
            time.sleep(_POLL_S)

    def _send(self, name: str, argument: Any, deadline: float) -> None:
        if self._connection is None or self._reaped:
            raise ServerCrashed("the server is no longer running")
        self._connection.send(encode_command(name, argument), deadline)

    def _receive(self, deadline: float) -> tuple[str, Any]:
        assert self._connection is not None
        return parse_reply(self._connection.receive(deadline))

    def command(self, name: str, argument: Any, timeout: float) -> Any:
        """Run a synchronous command; its ``OK`` result (``ServerCrashed`` on ``ERROR``)."""
        deadline = time.monotonic() + timeout
        self._send(name, argument, deadline)
        while True:
            reply, payload = self._receive(deadline)
            if reply == "NOTE":  # a notification of some other task: not ours to read
                continue
            if reply == "OK":
                return payload
            raise ServerCrashed(f"{name}: {reply} {payload}")

    def task(self, name: str, argument: Any, timeout: float) -> dict[str, Any]:
        """Run an asynchronous command to its end; the ``FINISHED`` result, or ``TaskFailed``
        with the ``FAILED`` one. ``ServerTimedOut`` after ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        started = self.command(name, argument, timeout)
        if not isinstance(started, dict) or "task" not in started:
            raise ServerCrashed(f"{name}: expected a task, got {started}")
        task = started["task"]
        while True:
            reply, payload = self._receive(deadline)
            if not isinstance(payload, dict) or payload.get("task") != task:
                continue  # a NOTE, or a message of another task
            if reply == "FINISHED":
                return payload
            if reply == "FAILED":
                raise TaskFailed(name, payload)
            if reply != "NOTE":
                raise ServerCrashed(f"{name}: unexpected reply {reply} {payload}")

    def close(self) -> None:
        """Close the connection and kill the server's process group. Safe to call twice."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if not self._reaped:  # after the reap the pid may belong to another process
            self._reaped = True
            kill_group(self._proc)
