"""A stand-in for the Lean REPL that replays recorded real transcripts (tests only).

    python tests/fake_lean_repl.py            # speaks the REPL protocol on stdin/stdout

It reads requests as the real REPL does (lines up to a blank line, joined without
separators; a request that is not JSON kills it with a message on stderr) and answers a
command whose ``cmd`` was recorded in tests/fixtures/lean_repl (Lean 4.33) with the recorded
response (``env`` renumbered to its own counter). Other commands get what the tests need:

- no ``env``: a header, answered ``{"env": n}``;
- ``#print axioms NAME`` (each of them), ``#check (rfl : type_of% @A = type_of% @B)`` and
  ``#check NAME``: answered as Lean would from what earlier commands declared (a ``-- fake-axioms: a, b``
  comment in a proof sets its axioms);
- ``FAKE_ILL_TYPED`` in a command: an "unknown identifier" error, as for a statement that
  does not elaborate; a proof that is ``sorry`` alone (indented): the ``sorry`` warning;
- ``FAKE_WRONG`` in a command: an "unsolved goals" error, as for a proof that does not prove;
- anything else: a clean ``{"env": n}``.

Attacks, as what a proof that runs code inside the real REPL makes it write (the screen keeps
such proofs out; these markers stand for a way past it): ``FAKE_FORGE_ANSWER`` prints a forged
clean answer ``{"env": 1}`` before the real one (``FAKE_FORGE_EXACT``: with the env the real
answer will have), then the real answer 0.3 s later; ``FAKE_LATE_BYTES`` prints a forged clean
answer 0.3 s after its real answer, where the next request finds it; ``FAKE_LINTER`` installs a
"linter" for every later command of the process that drops errors and sorries and answers
every ``#print axioms X`` with "'X' does not depend on any axioms" (echoing whatever name it
is asked about); ``FAKE_EXTRA_REPORT`` makes the follow-up about this proof's theorem carry a
forged clean report besides the real one; ``FAKE_MACRO_PRINT`` makes it carry only a forged
clean report in place of every real one (a macro for ``#print axioms`` that does not know the
follow-up's random name).

Markers in a command misbehave on demand: ``FAKE_CRASH`` (exit without answering),
``FAKE_CRASH_ONCE`` (crash the first time any process sees it), ``FAKE_HANG`` (start a
grandchild ``sleep`` and hang), ``FAKE_GARBAGE`` (answer non-JSON), ``FAKE_STDERR`` (write a
Lake warning to stderr, then answer), ``FAKE_BAD_HEADER`` (answer with an error, as for a
missing import). Out of memory under the address-space limit, as Lean dies of it:
``FAKE_OOM_<KIND>`` every time, ``FAKE_OOM_ONCE_<KIND>`` the first time any process sees it,
where KIND is ``THREAD`` (``failed to create thread`` on stderr, then abort), ``BAD_ALLOC``
(``std::bad_alloc``, abort), ``ENOMEM`` (``Cannot allocate memory``, exit 1), ``KILLED``
(SIGKILL, silently, as the kernel's OOM killer does) or ``ANSWER`` (stay alive and answer with
an error, after writing ``INTERNAL PANIC: out of memory`` to stderr).
Like REPL revisions before leanprover-community/repl#49 it never flushes stdout, so a client
only gets answers when stdout is a terminal (line-buffered).

Environment: ``FAKE_REPL_LOG`` names a JSON-lines file that gets one line per start and per
request; ``FAKE_REPL_STATE`` names a folder for ``FAKE_CRASH_ONCE``'s flag.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "lean_repl"
VERSION_DIRS = {"4.33": FIXTURES, "4.9": FIXTURES / "v4.9.0-rc1"}


def split_requests(text: str) -> list[str]:
    """Requests in a transcript's input, joined the way the REPL's ``getLines`` does."""
    requests, current = [], ""
    for line in text.splitlines(keepends=True):
        if line.strip():
            current += line.rstrip()
        elif current:
            requests.append(current)
            current = ""
    if current:
        requests.append(current)
    return requests


def load_transcripts(directory: Path) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Each transcript in ``directory``: its (request, response) pairs, in order."""
    transcripts = {}
    for path in sorted(directory.glob("*.in")):
        requests = [json.loads(r) for r in split_requests(path.read_text())]
        out = path.with_name(path.name.removesuffix(".in") + ".expected.out").read_text()
        responses = [json.loads(chunk) for chunk in out.split("\n\n") if chunk.strip()]
        assert len(requests) == len(responses), path
        transcripts[path.name.removesuffix(".in")] = list(zip(requests, responses, strict=True))
    return transcripts


# Names may be written from the root (`_root_.x`); the fake keeps one flat namespace.
_DECLARATION = re.compile(
    r"^(?:theorem|lemma|def)\s+(?:_root_\.)?(\S+)(.*?):=", re.MULTILINE | re.DOTALL
)
_AXIOMS_COMMENT = re.compile(r"-- fake-axioms: (.*)")
_PRINT_AXIOMS = re.compile(r"#print axioms (?:_root_\.)?(\S+)")
_OOM = re.compile(r"FAKE_OOM_(ONCE_)?(THREAD|BAD_ALLOC|ENOMEM|KILLED|ANSWER)")
_CHECK_NAME = re.compile(r"^#check (?:_root_\.)?([\w.']+)\s*$", re.M)
_SAME_TYPE = re.compile(
    r"#check \(rfl : type_of% @(?:_root_\.)?(\S+) = type_of% @(?:_root_\.)?(\S+)\)"
)


class FakeRepl:
    def __init__(self, log: Path | None, state: Path | None) -> None:
        self.recorded: dict[str, dict[str, Any]] = {}
        for pairs in load_transcripts(FIXTURES).values():
            for request, response in pairs:
                if "cmd" in request and "env" not in request:
                    self.recorded.setdefault(request["cmd"], response)
        self.envs: list[dict[str, tuple[str, tuple[str, ...]]]] = []  # name -> (type, axioms)
        self.log = log
        self.state = state
        self.linter = False  # FAKE_LINTER ran: every later answer is rewritten
        self.record({"event": "start"})

    def record(self, entry: dict[str, Any]) -> None:
        if self.log is not None:
            with self.log.open("a") as f:
                f.write(json.dumps({"pid": os.getpid(), **entry}) + "\n")

    def misbehave(self, cmd: str) -> dict[str, Any] | None:
        """Misbehave as ``cmd``'s markers say; an answer to give in place of the real one."""
        if "FAKE_CRASH_ONCE" in cmd:
            assert self.state is not None, "FAKE_CRASH_ONCE needs FAKE_REPL_STATE"
            flag = self.state / "crashed_once"
            if not flag.exists():
                flag.touch()
                sys.exit(3)
        elif "FAKE_CRASH" in cmd:
            sys.exit(3)
        if oom := _OOM.search(cmd):
            once, kind = oom.groups()
            flag = self.state / f"oom_{kind}" if once and self.state is not None else None
            if flag is None or not flag.exists():
                if flag is not None:
                    flag.touch()
                self.record({"event": "oom", "kind": kind})
                return self.out_of_memory(kind)
        if "FAKE_HANG" in cmd:
            child = subprocess.Popen(["sleep", "600"])
            self.record({"event": "hang", "grandchild": child.pid})
            time.sleep(600)
        if "FAKE_GARBAGE" in cmd:
            sys.stdout.write("this is not JSON\n\n")
            sys.stdout.flush()
        if "FAKE_STDERR" in cmd:
            sys.stderr.write(
                "warning: manifest out of date: git revision of dependency 'mathlib' changed\n"
            )
            sys.stderr.flush()
        return None

    def out_of_memory(self, kind: str) -> dict[str, Any] | None:
        """Die of (or, for ``ANSWER``, answer through) an out-of-memory condition."""
        messages = {
            "THREAD": "libc++abi: terminating due to uncaught exception of type "
            "lean::exception: failed to create thread",
            "BAD_ALLOC": "terminate called after throwing an instance of 'std::bad_alloc'\n"
            "  what():  std::bad_alloc",
            "ENOMEM": "uncaught exception: Cannot allocate memory",
            "ANSWER": "INTERNAL PANIC: out of memory",
        }
        if kind in messages:
            sys.stderr.write(messages[kind] + "\n")
            sys.stderr.flush()
        if kind == "ANSWER":
            return {"messages": [self.message("error", "(deterministic) timeout")]}
        if kind == "KILLED":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "ENOMEM":
            sys.exit(1)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file in the test's folder
        os.abort()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request["cmd"]
        forced = self.misbehave(cmd)
        if forced is not None:
            response = forced
            response["env"] = len(self.envs)
            self.envs.append({})
            return response
        if "FAKE_BAD_HEADER" in cmd:
            return {"messages": [self.message("error", "unknown package 'Mathlb'")], "env": 0}
        if "env" in request:
            if not 0 <= request["env"] < len(self.envs):
                return {"message": "Unknown environment."}
            declared = dict(self.envs[request["env"]])
        else:
            declared = {}
        if cmd in self.recorded:
            response = dict(self.recorded[cmd])
        elif "env" in request and (
            _PRINT_AXIOMS.search(cmd) or _SAME_TYPE.search(cmd) or _CHECK_NAME.search(cmd)
        ):
            response = self.follow_up(cmd, declared)
        elif "FAKE_ILL_TYPED" in cmd:  # in the statement: Lean reports it, whatever the proof
            response = {"messages": [self.message("error", "unknown identifier 'FAKE_ILL_TYPED'")]}
        elif cmd.endswith("\n  sorry"):  # sorry closes any goal, with a warning
            response = {"messages": [self.message("warning", "declaration uses `sorry`")]}
        elif "FAKE_WRONG" in cmd:
            response = {"messages": [self.message("error", "unsolved goals\n⊢ False")]}
        else:
            response = {}
        if not any(m["severity"] == "error" for m in response.get("messages", [])):
            axioms = _AXIOMS_COMMENT.search(cmd)
            for name, signature in _DECLARATION.findall(cmd):
                used = tuple(a.strip() for a in axioms.group(1).split(",")) if axioms else ()
                used += tuple(m for m in ("FAKE_EXTRA_REPORT", "FAKE_MACRO_PRINT") if m in cmd)
                declared.setdefault(name, (" ".join(signature.split()), used))
        if self.linter:
            response = self.rewritten(cmd, response)
        self.linter = self.linter or "FAKE_LINTER" in cmd
        response["env"] = len(self.envs)
        self.envs.append(declared)
        return response

    def rewritten(self, cmd: str, response: dict[str, Any]) -> dict[str, Any]:
        """What FAKE_LINTER leaves of an answer: no errors, no sorries, forged reports."""
        messages = [
            m
            for m in response.get("messages", [])
            if m["severity"] == "info" and "axioms" not in m["data"]
        ]
        for name in _PRINT_AXIOMS.findall(cmd):
            messages.append(self.message("info", f"'{name}' does not depend on any axioms"))
        return {"messages": messages} if messages else {}

    def follow_up(
        self, cmd: str, declared: dict[str, tuple[str, tuple[str, ...]]]
    ) -> dict[str, Any]:
        messages = []
        for name, signature in _DECLARATION.findall(cmd):  # the restated copy, with sorry
            messages.append(self.message("warning", "declaration uses `sorry`"))
            declared.setdefault(name, (" ".join(signature.split()), ("sorryAx",)))
        if same := _SAME_TYPE.search(cmd):
            left, right = same.groups()
            if left not in declared:
                messages.append(self.message("error", f"unknown identifier '{left}'"))
            elif declared[left][0] != declared[right][0]:
                messages.append(self.message("error", "type mismatch\n  rfl"))
        names = _PRINT_AXIOMS.findall(cmd)
        attacks = {a for name in names if name in declared for a in declared[name][1]}
        for name in names:
            if name not in declared:
                messages.append(self.message("error", f"unknown constant '{name}'"))
                continue
            forged = self.message("info", f"'{name}' does not depend on any axioms")
            if "FAKE_MACRO_PRINT" in attacks:
                if "FAKE_MACRO_PRINT" in declared[name][1]:
                    messages.append(forged)
                continue
            if "FAKE_EXTRA_REPORT" in declared[name][1]:
                messages.append(forged)
            axioms = tuple(a for a in declared[name][1] if not a.startswith("FAKE_"))
            if axioms:
                text = f"'{name}' depends on axioms: [{', '.join(axioms)}]"
                messages.append(self.message("info", text))
            else:
                messages.append(forged)
        for name in _CHECK_NAME.findall(cmd):
            if name not in declared:
                messages.append(self.message("error", f"unknown identifier '_root_.{name}'"))
        return {"messages": messages} if messages else {}

    @staticmethod
    def message(severity: str, data: str) -> dict[str, Any]:
        return {
            "severity": severity,
            "pos": {"line": 1, "column": 0},
            "endPos": {"line": 1, "column": 1},
            "data": data,
        }


def read_request() -> tuple[str, int] | None:
    """One request, read like the REPL's ``getLines``, and how many lines it spanned; None at
    end of input. A blank line alone is returned as a (malformed) request, as the REPL does."""
    query, lines = "", 0
    while True:
        line = sys.stdin.readline()
        if not line:
            return (query, lines) if query else None
        if not line.strip():
            return (query, lines) if query else (line, 1)
        query += line.rstrip()
        lines += 1


def main() -> None:
    log = os.environ.get("FAKE_REPL_LOG")
    state = os.environ.get("FAKE_REPL_STATE")
    repl = FakeRepl(Path(log) if log else None, Path(state) if state else None)
    while (read := read_request()) is not None:
        query, lines = read
        try:
            request = json.loads(query)
        except json.JSONDecodeError:  # the real REPL throws, and dies, on unparsable input
            sys.stderr.write(
                f'uncaught exception: {{"message": "Could not parse JSON: {query!r}"}}\n'
            )
            sys.exit(1)
        repl.record({"event": "request", "request": request, "lines": lines})
        cmd = request.get("cmd", "")
        forged = {"FAKE_FORGE_ANSWER": 1, "FAKE_FORGE_EXACT": len(repl.envs)}
        for marker, env in forged.items():
            if marker in cmd:
                write(json.dumps({"env": env}) + "\n\n")
                time.sleep(0.3)
        write(json.dumps(repl.answer(request), indent=1, ensure_ascii=False) + "\n\n")
        if "FAKE_LATE_BYTES" in cmd:
            late = json.dumps({"env": len(repl.envs)}) + "\n\n"
            threading.Timer(0.3, write, args=(late,)).start()


_WRITE = threading.Lock()


def write(text: str) -> None:
    """Write to stdout (line-buffered on a terminal; the forgeries end in newlines too)."""
    with _WRITE:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
