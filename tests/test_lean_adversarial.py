"""The Lean backend against proofs that attack the checker, through stand-ins that write what
each attack makes the real tools write (tests/fake_lean_repl.py for the REPL,
tests/fake_lake.py for the second line's ``lean`` and ``stp_check``): a forged answer printed
early with the real one later, stale bytes left for the next job, a "linter" rewriting every
later answer, extra or replaced ``#print axioms`` reports; and genuine proofs, which must stay
``proved`` through all of it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_lean_pool import PROVED, job, make, marked, requests, starts
from test_lean_screen import BYPASSES, GENUINE

from stp.verify import VerifierUnavailableError
from stp.verify.lean_check import CHECKER, KernelCheckError, checker_report
from stp.verify.process import RunAs, run_as_user, run_bounded
from stp.verify.types import Verdict, VerifyJob

FAKE_LAKE = Path(__file__).with_name("fake_lake.py")
WRONG = "FAKE_WRONG"  # the stand-ins' mark of a proof that does not prove its statement


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in REPL's log (one line per start and per request)."""
    monkeypatch.setenv("FAKE_REPL_LOG", str(tmp_path / "repl.log"))
    return tmp_path / "repl.log"


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `lake` on PATH and a built checker in the Lean project (tmp_path); the
    returned log gets one line per run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "lake"
    script.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE_LAKE))} "$@"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    checker = tmp_path / CHECKER
    checker.parent.mkdir(parents=True)
    checker.touch()
    path = tmp_path / "lake.log"
    monkeypatch.setenv("FAKE_LAKE_LOG", str(path))
    return path


def lake_runs(path: Path) -> list[list[str]]:
    return [json.loads(line)["argv"] for line in path.read_text().splitlines()]


# ----------------------------------------------------------------------------- the REPL line


@pytest.mark.parametrize("marker", ["FAKE_FORGE_ANSWER", "FAKE_FORGE_EXACT"])
def test_a_forged_answer_printed_early_is_never_proved(
    tmp_path: Path, log: Path, marker: str
) -> None:
    # The proof prints `{"env": 1}` while it is elaborated, then the REPL's real answer (an
    # error) follows: read as the follow-up's answer, it has the wrong env and no random name.
    with make(tmp_path) as verifier:
        for attempt in range(2):  # FAKE_FORGE_ANSWER's env 1 is right on a fresh REPL only
            (forged,) = verifier.verify([marked(f"forged{attempt}", f"{marker} {WRONG}")])
            assert forged.verdict is Verdict.UNSOUND, forged
            assert "did not line up" in forged.detail
        (after,) = verifier.verify([job("after", PROVED)])
    assert after.verdict is Verdict.PROVED
    assert len(starts(log)) == 3  # each attack retired its REPL


def test_stale_bytes_are_not_read_as_the_next_jobs_answer(tmp_path: Path, log: Path) -> None:
    # A forged clean answer arrives after the job's real ones, waiting for the next request.
    with make(tmp_path) as verifier:
        (first,) = verifier.verify([marked("late", "FAKE_LATE_BYTES")])
        time.sleep(0.6)
        (wrong,) = verifier.verify([marked("wrong", WRONG)])
    assert first.verdict is Verdict.PROVED
    assert wrong.verdict is Verdict.FAILED, wrong  # judged on a fresh REPL, on its own answer
    assert len(starts(log)) == 2


@pytest.mark.parametrize(
    "marker",
    [
        "FAKE_EXTRA_REPORT fake-axioms: cheat",  # a forged clean report besides the real one
        "FAKE_MACRO_PRINT fake-axioms: sorryAx",  # a forged report in place of the real ones
    ],
)
def test_forged_axioms_reports_are_never_proved(tmp_path: Path, log: Path, marker: str) -> None:
    with make(tmp_path) as verifier:
        (result,) = verifier.verify([marked("forged", marker)])
    assert result.verdict is Verdict.UNSOUND, result


def test_screened_proofs_never_reach_the_repl(tmp_path: Path, log: Path) -> None:
    jobs = [job(name, ("theorem t : True := by", proof)) for name, proof in BYPASSES.items()]
    with make(tmp_path) as verifier:
        results = verifier.verify(jobs)
    assert all(r.verdict is Verdict.UNSOUND for r in results)
    assert requests(log) == []


def test_genuine_proofs_stay_proved(tmp_path: Path, log: Path) -> None:
    statements = [
        "theorem mathd_algebra_10 (x : ℝ) (h₀ : x = 2) :\n  x ^ 2 = 4 := by",
        "theorem Nat.stp_foo {n : ℕ} (h : 0 < n) : n ≠ 0 := by",
        "theorem stp_universes {G : Type*} [Group G] (a : G) : a * 1 = a := by",
    ]
    jobs = [job("recorded", PROVED)] + [
        job(f"{name}/{i}", (statement, proof))
        for name, proof in GENUINE.items()
        for i, statement in enumerate(statements)
    ]
    with make(tmp_path, jobs_per_worker=len(jobs)) as verifier:
        results = verifier.verify(jobs)
    assert [r.id for r in results if r.verdict is not Verdict.PROVED] == []
    assert len(starts(log)) == 1  # and nothing genuine looked like an anomaly


# ----------------------------------------------------------------------------- the second line


def test_the_second_line_confirms_genuine_proofs(tmp_path: Path, log: Path, lake: Path) -> None:
    with make(tmp_path) as verifier:
        first, second = verifier.verify(
            [marked("a", "fake-axioms: propext"), marked("b", "fake-axioms: Quot.sound")]
        )
    assert (first.verdict, first.axioms) == (Verdict.PROVED, ("propext",))
    assert (second.verdict, second.axioms) == (Verdict.PROVED, ("Quot.sound",))
    assert "second check: kernel replay" in first.assistant_version
    runs = lake_runs(lake)
    compiles = [argv[-1] for argv in runs if argv[:3] == ["env", "lean", "-o"]]
    checks = [argv for argv in runs if argv[1] == CHECKER]
    assert len(compiles) == 3  # the statement once (shared), each proof once
    assert len(set(compiles)) == 3  # every compile in a folder of its own
    assert [argv[-1] for argv in checks] == ["t", "t"]
    assert not any(Path(path).exists() for path in compiles)  # scratch folders are removed


def test_a_repl_whose_messages_are_rewritten_is_retired(
    tmp_path: Path, log: Path, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "linter" from one proof rewrites every later answer of its REPL: it drops errors and
    # sorries and echoes whatever names it is asked about. The follow-up's canary error goes
    # missing with them: the REPL is retired, the job runs once more on a fresh one, and a
    # proof that poisons that one too is unsound. The next job runs on a clean REPL.
    jobs = [marked("poison", "FAKE_LINTER"), marked("wrong", WRONG), job("fine", PROVED)]
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no lake: the REPL line alone
    with make(tmp_path, lean_kernel_check="off") as verifier:
        poison, wrong, fine = verifier.verify(jobs)
    assert poison.verdict is Verdict.UNSOUND and "rewrites the REPL's messages" in poison.detail
    assert wrong.verdict is Verdict.FAILED
    assert fine.verdict is Verdict.PROVED
    assert len(starts(log)) == 3  # the poisoned REPL twice, then a clean one


def test_the_kernel_replay_decides(tmp_path: Path, log: Path, lake: Path) -> None:
    with make(tmp_path) as verifier:
        rejected, crashed = verifier.verify(
            [marked("rejected", "FAKE_KERNEL_REJECTS"), marked("crashed", "FAKE_CHECK_CRASH")]
        )
    assert rejected.verdict is Verdict.UNSOUND and "kernel rejects" in rejected.detail
    assert crashed.verdict is Verdict.VERIFIER_ERROR and "stp_check failed" in crashed.detail


def test_a_statement_that_does_not_compile_alone_is_a_verifier_error(
    tmp_path: Path, log: Path, lake: Path
) -> None:
    statement = "theorem t : True := by -- FAKE_LEAN_FAILS"  # the REPL takes it, lean not
    with make(tmp_path) as verifier:
        (result,) = verifier.verify([job("x", (statement, "  trivial"))])
    assert result.verdict is Verdict.VERIFIER_ERROR
    assert "the statement does not compile" in result.detail


def test_second_line_settings(tmp_path: Path, log: Path, lake: Path) -> None:
    (tmp_path / CHECKER).unlink()
    with pytest.raises(VerifierUnavailableError, match="stp_check"):
        make(tmp_path)  # auto, with lake on PATH: on, and the checker must be built
    with make(tmp_path, lean_kernel_check="off") as verifier:
        (result,) = verifier.verify([job("p", PROVED)])
    assert result.verdict is Verdict.PROVED and "second check: off" in result.assistant_version
    assert not lake.exists()
    with pytest.raises(VerifierUnavailableError, match="lean_run_as"):
        make(tmp_path, lean_kernel_check="off", lean_run_as="no-such-user-stp")


def test_checker_report_is_its_last_line_or_an_error() -> None:
    line = '{"stp_check": 1, "ok": true, "reason": "", "axioms": ["propext"]}'
    assert checker_report(f"noise\n{line}\n")["axioms"] == ["propext"]
    for output in ("", "Replaying foo\n", '{"ok": true}', "[1, 2]"):
        with pytest.raises(KernelCheckError):
            checker_report(output)


# ----------------------------------------------------------------------------- sandboxing


def test_run_as_user() -> None:
    assert run_as_user("") is None
    with pytest.raises(ValueError, match="no such user"):
        run_as_user("no-such-user-stp")
    if os.geteuid() != 0:
        with pytest.raises(ValueError, match="root"):
            run_as_user("0")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_processes_run_as_another_user_cannot_write_our_files(tmp_path: Path) -> None:
    nobody = run_as_user("nobody")
    assert isinstance(nobody, RunAs)
    shared = tmp_path / "project"
    shared.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    write = ["sh", "-c", f"echo x > {shlex.quote(str(shared / 'x'))}"]
    status, output = run_bounded(["id", "-u"], shared, 256, 30, nobody)
    assert (status, output.strip()) == (0, str(nobody.uid))
    status, output = run_bounded(write, shared, 256, 30, nobody)
    assert status != 0 and "Permission denied" in output
    assert run_bounded(write, shared, 256, 30) == (0, "")  # as ourselves


def test_run_bounded_kills_what_runs_too_long(tmp_path: Path) -> None:
    start = time.monotonic()
    assert run_bounded(["sleep", "30"], tmp_path, 256, 0.5) == (None, "")
    assert time.monotonic() - start < 10
    assert subprocess.run(["true"]).returncode == 0


def test_a_job_is_a_verify_job() -> None:
    assert isinstance(job("x", PROVED), VerifyJob)


# ------------------------------------------------------------- known exploits of Lean 4.9

# Each with what the pinned Lean 4.9 does with it: `apply?` closes the goal with a synthetic
# sorry that no message reports (DeepSeek-Prover-V2 revised its PutnamBench count over it);
# `native_decide` proves by compiled code, as the axiom Lean.ofReduceBool; `set_option
# debug.skipKernelTC true in` adds the theorem without the kernel checking it.
EXPLOITS = {
    "apply?": "  apply?",
    "apply? using": "  apply? using h",
    "exact?": "  exact?",
    "native_decide": "  native_decide",
    "debug.skipKernelTC": "  set_option debug.skipKernelTC true in\n  exact absurd",
    "a debug option in guillemets": "  set_option «debug».skipKernelTC true in\n  simp",
    "an option off the allow-list": "  set_option compiler.extract_closed false in\n  decide",
}


@pytest.mark.parametrize("proof", EXPLOITS.values(), ids=EXPLOITS.keys())
def test_lean_4_9_exploits_are_unsound_before_the_repl(
    tmp_path: Path, log: Path, proof: str
) -> None:
    with make(tmp_path) as verifier:
        (result,) = verifier.verify([job("exploit", ("theorem t : 1 = 2 := by", proof))])
    assert result.verdict is Verdict.UNSOUND, result
    word = proof.split()[0] if proof.split()[0] != "set_option" else "set_option"
    assert word.strip("?") in result.detail
    assert requests(log) == []


@pytest.fixture
def unscreened(monkeypatch: pytest.MonkeyPatch) -> None:
    """The screen passes everything: the lines behind it must still refuse each exploit."""
    monkeypatch.setattr("stp.verify.lean.LeanWorker.screen", lambda self, proof: None)


# Past the screen, as the REPL answers them (scripted by tests/fake_lean_repl.py): a clean
# answer, and `#print axioms` naming what the exploit leans on.
@pytest.mark.parametrize(
    ("proof", "verdict", "detail"),
    [
        ("  apply? -- fake-axioms: sorryAx", Verdict.INCOMPLETE, "sorryAx"),
        ("  exact? -- fake-axioms: sorryAx", Verdict.INCOMPLETE, "sorryAx"),
        ("  native_decide -- fake-axioms: Lean.ofReduceBool", Verdict.UNSOUND, "ofReduceBool"),
    ],
    ids=["apply?", "exact?", "native_decide"],
)
def test_past_the_screen_the_repl_follow_up_refuses_them(
    tmp_path: Path, log: Path, unscreened: None, proof: str, verdict: Verdict, detail: str
) -> None:
    with make(tmp_path, lean_kernel_check="off") as verifier:
        (result,) = verifier.verify([job("exploit", ("theorem t : 1 = 2 := by", proof))])
    assert (result.verdict, detail in result.detail) == (verdict, True), result
    assert any("#print axioms" in r["request"]["cmd"] for r in requests(log))  # it got there


def test_past_the_screen_the_kernel_replay_refuses_skip_kernel_tc(
    tmp_path: Path, log: Path, lake: Path, unscreened: None
) -> None:
    # The REPL accepts a theorem the kernel never saw, and `#print axioms` is clean: only the
    # replay through the kernel in another process (line 4) can refuse it.
    proof = "  set_option debug.skipKernelTC true in\n  exact absurd -- FAKE_KERNEL_REJECTS"
    with make(tmp_path) as verifier:
        (result,) = verifier.verify([job("exploit", ("theorem t : 1 = 2 := by", proof))])
    assert result.verdict is Verdict.UNSOUND and "kernel rejects" in result.detail, result
    stp_check_runs = [run for run in lake_runs(lake) if run[1] == CHECKER]
    assert len(stp_check_runs) == 1
