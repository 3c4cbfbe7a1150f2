"""A stand-in for ``lake`` with what the Lean backend's second line runs (tests only).

    lake env lean -o OUT.olean FILE.lean
    lake env .lake/build/bin/stp_check STATEMENT.olean PROOF.olean NAME

(put on PATH as ``lake`` by the tests). The stand-in ``lean`` "compiles" a file into a JSON
"olean": its imports and each ``theorem NAME SIGNATURE :=`` with the axioms it depends on
(``sorryAx`` for a ``sorry`` proof, the names in a ``-- fake-axioms: a, b`` comment). Markers in
the file: ``FAKE_WRONG`` (the proof does not prove: an error, exit 1; ``FAKE_LEAN_FAILS``
too, for a file the REPL takes), ``FAKE_KERNEL_REJECTS``
(the file holds a declaration the elaborator added without the kernel: the checker's replay
fails), ``FAKE_CHECK_CRASH`` (the checker dies). The stand-in ``stp_check`` compares the two
files as StpCheck.lean does and prints its one-line report.

``FAKE_LAKE_LOG`` names a JSON-lines file that gets one line per run (argv and cwd).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

_THEOREM = re.compile(r"^theorem\s+(\S+)(.*?):=", re.MULTILINE | re.DOTALL)
_AXIOMS = re.compile(r"-- fake-axioms: (.*)")


def compile_file(out: Path, source: Path) -> int:
    text = source.read_text(encoding="utf-8")
    if "FAKE_WRONG" in text or "FAKE_LEAN_FAILS" in text:
        print(f"{source}:3:2: error: unsolved goals\n⊢ False")
        return 1
    listed = _AXIOMS.search(text)
    axioms = [a.strip() for a in listed.group(1).split(",")] if listed else []
    if re.search(r"\bsorry\b", text):
        axioms.append("sorryAx")
        print(f"{source}:1:8: warning: declaration uses 'sorry'")
    declarations = {
        name: {"type": " ".join(signature.split()), "axioms": sorted(set(axioms))}
        for name, signature in _THEOREM.findall(text)
    }
    olean = {
        "imports": [line for line in text.splitlines() if line.startswith("import ")],
        "declarations": declarations,
        "kernel_rejects": "FAKE_KERNEL_REJECTS" in text,
        "crash": "FAKE_CHECK_CRASH" in text,
    }
    out.write_text(json.dumps(olean))
    return 0


def report(ok: bool, reason: str = "", axioms: list[str] | None = None) -> int:
    print(json.dumps({"stp_check": 1, "ok": ok, "reason": reason, "axioms": axioms or []}))
    return 0


def check(statement_path: Path, proof_path: Path, name: str) -> int:
    statement = json.loads(statement_path.read_text())
    proof = json.loads(proof_path.read_text())
    if proof["crash"]:
        print("INTERNAL PANIC: out of memory", file=sys.stderr)
        return 134
    if statement["imports"] != proof["imports"]:
        return report(False, "the proof's file does not have the statement's imports")
    if name not in statement["declarations"]:
        return report(False, f"the statement's file does not declare {name}")
    if name not in proof["declarations"]:
        return report(False, f"the proof's file does not declare {name}")
    if proof["declarations"][name]["type"] != statement["declarations"][name]["type"]:
        return report(False, f"{name} does not have the statement's type")
    if proof["kernel_rejects"]:
        return report(
            False, "the kernel rejects the proof's file: (kernel) declaration type mismatch"
        )
    return report(True, "", proof["declarations"][name]["axioms"])


def main() -> int:
    args = sys.argv[1:]
    log = os.environ.get("FAKE_LAKE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"argv": args, "cwd": os.getcwd()}) + "\n")
    if args[:2] == ["env", "lean"] and args[2] == "-o":
        return compile_file(Path(args[3]), Path(args[4]))
    if args[:1] == ["env"] and args[1].endswith("stp_check"):
        return check(Path(args[2]), Path(args[3]), args[4])
    print(f"fake lake: unexpected arguments {args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
