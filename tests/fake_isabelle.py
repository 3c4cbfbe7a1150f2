"""A scripted stand-in for the ``isabelle`` launcher: ``version`` and ``server``.

No Isabelle can be installed where the tests run, so this speaks the server protocol of the
Isabelle system manual (chapter "The Isabelle server") over a real TCP socket, and "checks" a
theory by rules on its proof text instead of by Isabelle:

- ``by fake_fail``: an error at that line; ``apply fake_open`` (no ``done``): the proof stays
  open, so the theory-level sentinel after it fails, as Isabelle's would;
- ``by fake_skip`` / ``by fake_oracle``: the check reports the ``skip_proof`` / ``evaluation``
  oracle; ``by fake_axiom``: the check reports added axioms;
- ``by fake_hang``: no answer; ``by fake_crash``: the server exits; ``by fake_garbage``: a
  reply that is not ``name JSON``; ``by fake_oom``: the JVM runs out of heap (it says so on
  stderr, and the server exits); ``by fake_oom_once``: the same, the first time any server
  sees it (a flag file beside ``FAKE_ISABELLE_LOG``);
- ``imports Broken``: an error in the header; anything else checks, and the check replies OK.

The check's reply is built from the nonce in the theory's own check text, as the real check
prints it. Every ``FINISHED`` is sent as a long message (length line, then bytes). With
``FAKE_ISABELLE_LOG`` set, each server start and each theory used is appended to that file;
with ``FAKE_ISABELLE_NO_VM`` set, the server fails to start as a JVM short of memory does.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

PASSWORD = uuid.uuid4().hex


def log(line: str) -> None:
    if path := os.environ.get("FAKE_ISABELLE_LOG"):
        with open(path, "a") as f:
            f.write(line + "\n")


def send(conn: socket.socket, name: str, payload: Any, long: bool = False) -> None:
    data = f"{name} {json.dumps(payload)}".encode()
    conn.sendall(f"{len(data)}\n".encode() + data + b"\n" if long else data + b"\n")


def message(kind: str, text: str, line: int, file: str) -> dict[str, Any]:
    return {"kind": kind, "message": text, "pos": {"line": line, "offset": 1, "file": file}}


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def check(path: Path, conn: socket.socket) -> tuple[bool, list[dict[str, Any]]]:
    """(ok, messages) of one theory file, by the rules in the module docstring."""
    text = path.read_text()
    file = str(path)
    name = re.search(r"\btheory\s+(\S+)", text)
    if name is None or name.group(1) != path.stem:
        return False, [message("error", "Bad theory name", 1, file)]
    if re.search(r"imports[^\n]*\bBroken\b", text):
        return False, [message("error", 'Bad theory import "Broken"', 1, file)]
    if "theorem" not in text:  # a header alone
        return True, []
    if "fake_oom" in text:
        flag = Path(os.environ.get("FAKE_ISABELLE_LOG", "/nonexistent") + ".oom")
        if "fake_oom_once" not in text or not flag.exists():
            if "fake_oom_once" in text:
                flag.touch()
            sys.stderr.write(
                'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space\n'
            )
            sys.stderr.flush()
            os._exit(3)
    for rule in ("fake_fail", "fake_open", "fake_hang", "fake_crash", "fake_garbage"):
        if rule not in text:
            continue
        if rule == "fake_fail":
            return False, [message("error", "Failed to finish proof", line_of(text, rule), file)]
        if rule == "fake_open":
            sentinel = line_of(text, "ML \\<open>\\<close>")
            return False, [
                message(
                    "error", 'Illegal application of command "ML" in proof mode', sentinel, file
                )
            ]
        if rule == "fake_hang":
            time.sleep(3600)
        if rule == "fake_crash":
            os._exit(3)
        conn.sendall(b"%%% garbage %%%\n")
        return True, []
    nonce = re.search(r"STP_CHECK (\w+) ", text)
    assert nonce is not None, "the theory has no check"
    verdict = "OK"
    if "fake_skip" in text:
        verdict = "ORACLES oracles:\n  Pure.skip_proof"
    elif "fake_oracle" in text:
        verdict = "ORACLES oracles:\n  Code_Evaluation.evaluation"
    elif "fake_axiom" in text:
        verdict = "AXIOMS"
    at = line_of(text, "ML_val")
    return True, [message("writeln", f"STP_CHECK {nonce.group(1)} {verdict}", at, file)]


def serve(conn: socket.socket) -> None:
    reader = conn.makefile("rb")
    if reader.readline().decode().strip() != PASSWORD:
        return  # an illegal connection: silent disconnection
    send(conn, "OK", {"isabelle_id": "stand-in", "isabelle_name": "Isabelle2024"})
    for raw in reader:
        name, _, argument = raw.decode().strip().partition(" ")
        args = json.loads(argument) if argument else None
        task = uuid.uuid4().hex
        if name == "session_start":
            send(conn, "OK", {"task": task})
            send(conn, "NOTE", {"task": task, "kind": "writeln", "message": "Starting"})
            if args["session"] == "Broken":
                send(conn, "FAILED", {"task": task, "kind": "error", "message": "Bad session"})
            else:
                session = {"task": task, "session_id": uuid.uuid4().hex, "tmp_dir": "/tmp"}
                send(conn, "FINISHED", session, long=True)
        elif name == "use_theories":
            send(conn, "OK", {"task": task})
            (theory,) = args["theories"]
            path = Path(args["master_dir"]) / f"{theory}.thy"
            log(f"use {theory}")
            ok, messages = check(path, conn)
            status = {"ok": ok, "total": 3, "unprocessed": 0, "running": 0, "warned": 0,
                      "failed": 0 if ok else 1, "finished": 3, "canceled": False,
                      "consolidated": True, "percentage": 100}  # fmt: skip
            node = {"node_name": str(path), "theory_name": f"Draft.{theory}",
                    "status": status, "messages": messages, "exports": []}  # fmt: skip
            errors = [m for m in messages if m["kind"] == "error"]
            result = {"task": task, "ok": ok, "errors": errors, "nodes": [node]}
            send(conn, "FINISHED", result, long=True)
        elif name == "purge_theories":
            send(conn, "OK", {"purged": args["theories"], "retained": []})
        elif name in ("cancel", "echo"):
            send(conn, "OK", args)
        elif name == "shutdown":
            send(conn, "OK", None)
            sys.exit(0)
        else:
            send(conn, "ERROR", f"Bad command {name!r}")


def main() -> int:
    if sys.argv[1:] == ["version"]:
        print("Isabelle2024 (stand-in)")
        return 0
    if sys.argv[1:2] != ["server"]:
        print(f"fake_isabelle: unknown arguments {sys.argv[1:]}", file=sys.stderr)
        return 2
    if os.environ.get("FAKE_ISABELLE_NO_VM"):  # a JVM that cannot reserve its heap
        print("Error occurred during initialization of VM\nCould not reserve enough space")
        return 1
    name = sys.argv[sys.argv.index("-n") + 1]
    listener = socket.create_server(("127.0.0.1", 0))
    print(f'server "{name}" = 127.0.0.1:{listener.getsockname()[1]} (password "{PASSWORD}")')
    sys.stdout.flush()
    log("start")
    while True:
        conn, _ = listener.accept()
        with conn:
            serve(conn)


if __name__ == "__main__":
    sys.exit(main())
