"""The Lean backend's second line: a proof the REPL accepted, checked again where no code of the
proof can reach the verdict.

    checker = KernelCheck(lean_project, memory_limit_mb=8192, timeout_s=600, run_as=None)
    verdict, detail, axioms = checker.check(header, formal_statement, proof, name)
    checker.close()

Three processes, none of them the REPL that accepted the proof:

1. ``lake env lean -o Statement.olean Statement.lean`` compiles header + statement + ``sorry``
   (no proof text: nothing hostile runs), once per statement;
2. ``lake env lean -o Proof.olean Proof.lean`` compiles header + statement + proof in a fresh
   process and working folder. Code in the proof may run here; all that leaves this process
   is the ``.olean`` it writes (its output and exit status are never read as a verdict, only
   a failure to compile is);
3. ``lake env .lake/build/bin/stp_check Statement.olean Proof.olean NAME`` (built from
   ``lean_project/StpCheck.lean``) runs none of the proof's code: it replays every constant of
   ``Proof.olean`` through the kernel, requires NAME to have exactly the type the statement's
   own compilation gave it, over the same imports, and collects its axioms; only
   ``propext``, ``Classical.choice`` and ``Quot.sound`` are allowed.

What it does not cover: ``Proof.olean`` is read by Lean's own loader, which trusts the file's
structure, so a proof that runs code while it is compiled could write one crafted to attack
the loader (the screen in ``stp.verify.lean_screen`` keeps proof code from running; Lean's
comparator, reading lean4export's text format, would close this). And unless the processes run
as another user (``verification.lean_run_as``), code run in step 2 can write whatever this
user can, the toolchain and Mathlib's ``.olean`` files included.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from stp.artifacts import text_sha256
from stp.languages.lean import LEAN
from stp.verify.process import RunAs, run_bounded
from stp.verify.types import Verdict

CHECKER = ".lake/build/bin/stp_check"
ALLOWED_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})


class KernelCheckError(Exception):
    """The second line could not reach a verdict (a compile of the statement failed, the
    checker crashed or said something that is not its report)."""


def _first_error(output: str) -> str:
    """The first line of ``lean``'s output that reports an error, for the result's detail."""
    for line in output.splitlines():
        if ": error:" in line or line.startswith("error"):
            return line.strip()[:300]
    return output.strip().splitlines()[0][:300] if output.strip() else "no output"


def checker_report(output: str) -> dict[str, object]:
    """The checker's report: the last line of its output, a JSON object with ``stp_check``."""
    lines = [line for line in output.splitlines() if line.strip()]
    try:
        report = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict) or report.get("stp_check") != 1:
        raise KernelCheckError(f"stp_check gave no report: {output.strip()[-300:]!r}")
    return report


class KernelCheck:
    """Runs the second line for one worker; statements compiled once are kept until ``close``
    in a folder only this process can write."""

    def __init__(
        self,
        lean_project: Path,
        memory_limit_mb: int,
        timeout_s: float,
        run_as: RunAs | None,
        lake: Path | str = "lake",
    ) -> None:
        self._lake = str(lake)  # `lake env` puts its toolchain's bin folder on PATH for lean
        self._project = lean_project
        self._memory_limit_mb = memory_limit_mb
        self._timeout_s = timeout_s
        self._run_as = run_as
        # Others may pass through (to their scratch folder) but not list or write it.
        self._root = Path(tempfile.mkdtemp(prefix="stp-lean-check-"))
        self._root.chmod(0o711)
        self._statements: dict[str, Path] = {}

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)

    def _scratch(self) -> Path:
        """A fresh folder the compile may write (and nothing else of ours)."""
        folder = Path(tempfile.mkdtemp(dir=self._root))
        if self._run_as is not None:
            os.chown(folder, self._run_as.uid, self._run_as.gid)
        return folder

    def _compile(self, source: str) -> tuple[int | None, str, Path]:
        """Compile ``source`` in a fresh folder: exit status (None: timeout), output, and the
        ``.olean`` path."""
        folder = self._scratch()
        (folder / "Check.lean").write_text(source, encoding="utf-8")
        olean = folder / "Check.olean"
        argv = [self._lake, "env", "lean", "-o", str(olean), str(folder / "Check.lean")]
        status, output = run_bounded(
            argv, self._project, self._memory_limit_mb, self._timeout_s, self._run_as
        )
        return status, output, olean

    def _statement(self, header: str, formal_statement: str) -> Path:
        """The compiled statement (with ``sorry``), kept where the sandboxed compiles of proofs
        cannot write."""
        key = text_sha256(header, formal_statement).hex()
        if key in self._statements:
            return self._statements[key]
        status, output, olean = self._compile(LEAN.assemble(header, formal_statement, "sorry"))
        if status != 0 or not olean.is_file():
            raise KernelCheckError(f"the statement does not compile: {_first_error(output)}")
        kept = self._root / f"{key}.olean"
        shutil.copyfile(olean, kept)  # a copy is ours: the compile's user cannot rewrite it
        shutil.rmtree(olean.parent, ignore_errors=True)
        self._statements[key] = kept
        return kept

    def check(
        self, header: str, formal_statement: str, proof: str, name: str
    ) -> tuple[Verdict, str, tuple[str, ...]]:
        """The second line's verdict on a proof, a one-line reason and the axioms it uses.
        Raises ``KernelCheckError`` when no verdict could be reached."""
        statement = self._statement(header, formal_statement)
        status, output, olean = self._compile(LEAN.assemble(header, formal_statement, proof))
        try:
            if status is None:
                return Verdict.TIMEOUT, "second check: compiling the proof timed out", ()
            if status != 0 or not olean.is_file():
                return (
                    Verdict.UNSOUND,
                    f"second check: the proof does not compile on its own: {_first_error(output)}",
                    (),
                )
            argv = [self._lake, "env", CHECKER, str(statement), str(olean), name]
            status, output = run_bounded(
                argv, self._project, self._memory_limit_mb, self._timeout_s, self._run_as
            )
        finally:
            shutil.rmtree(olean.parent, ignore_errors=True)
        if status is None:
            return Verdict.TIMEOUT, "second check: the kernel replay timed out", ()
        if status != 0:
            raise KernelCheckError(f"stp_check failed (exit {status}): {output.strip()[-300:]!r}")
        report = checker_report(output)
        listed = report.get("axioms")
        axioms = tuple(sorted(str(a) for a in listed)) if isinstance(listed, list) else ()
        if report.get("ok") is not True:
            return Verdict.UNSOUND, f"second check: {report.get('reason', '')}", axioms
        if "sorryAx" in axioms:
            return Verdict.INCOMPLETE, "second check: depends on sorryAx", axioms
        forbidden = sorted(set(axioms) - ALLOWED_AXIOMS)
        if forbidden:
            return (
                Verdict.UNSOUND,
                f"second check: depends on forbidden axioms: {', '.join(forbidden)}",
                axioms,
            )
        return Verdict.PROVED, "", axioms
