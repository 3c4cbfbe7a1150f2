"""The Lean backend end to end on real miniF2F statements, with the real REPL.

Runs only where `lake` is on PATH and scripts/setup_lean.sh has built lean_project/
(skipped elsewhere by conftest). The first job imports Mathlib: expect a minute or more."""

from __future__ import annotations

from pathlib import Path

import pytest

from stp.config import VerificationConfig
from stp.data import load_benchmark
from stp.verify import make_verifier
from stp.verify.lean import ALLOWED_AXIOMS
from stp.verify.lean_check import KernelCheck
from stp.verify.types import Verdict, VerifyJob

pytestmark = [pytest.mark.lean, pytest.mark.slow]

PROJECT = Path(__file__).parents[1] / "lean_project"


def minif2f_job(id: str, name: str, proof: str) -> VerifyJob:
    statement = next(s for s in load_benchmark("minif2f", prover="lean") if s.name == name)
    return VerifyJob(
        id=id, header=statement.header, formal_statement=statement.formal_statement, proof=proof
    )


def test_real_minif2f_proofs() -> None:
    config = VerificationConfig(
        backend="lean",
        lean_project=str(PROJECT),
        workers=2,
        timeout_s=120.0,
        header_timeout_s=1200.0,
        memory_limit_mb=8192,
    )
    jobs = [
        minif2f_job("norm_num", "mathd_algebra_304", "  norm_num"),
        minif2f_job("decide", "mathd_numbertheory_81", "  decide"),
        minif2f_job("hypothesis", "mathd_algebra_455", "  linarith"),
        minif2f_job("bullets", "mathd_algebra_126", "  constructor\n  · linarith\n  · linarith"),
        minif2f_job("sorry", "mathd_algebra_304", "  sorry"),
        minif2f_job("term sorry", "mathd_numbertheory_81", "  exact sorry"),
        minif2f_job("wrong", "mathd_numbertheory_81", "  rfl\n  simp"),
        minif2f_job("unknown", "mathd_algebra_304", "  exact foo_bar_baz"),
        minif2f_job("native", "mathd_numbertheory_81", "  native_decide"),
        VerifyJob(  # a universe-polymorphic statement, as many ProofNet ones are
            id="universes",
            header="import Mathlib\n",
            formal_statement="theorem stp_universes {G : Type*} [Group G] (a : G) : a * 1 = a := by",
            proof="  simp",
        ),
    ]
    with make_verifier(config) as verifier:
        results = {r.id: r for r in verifier.verify(jobs)}
    assert results["norm_num"].verdict is Verdict.PROVED, results["norm_num"]
    assert set(results["norm_num"].axioms) <= ALLOWED_AXIOMS
    for id in (
        "decide",
        "hypothesis",
        "bullets",
        "universes",
    ):  # binders and hypotheses: the re-check
        assert results[id].verdict is Verdict.PROVED, results[id]
    assert results["sorry"].verdict is Verdict.INCOMPLETE
    assert results["term sorry"].verdict is Verdict.INCOMPLETE
    assert results["wrong"].verdict is Verdict.FAILED
    assert results["unknown"].verdict is Verdict.FAILED
    assert results["native"].verdict is Verdict.UNSOUND
    assert "v4.9.0-rc1" in results["norm_num"].assistant_version
    assert "second check: kernel replay" in results["norm_num"].assistant_version


def test_second_line_on_its_own() -> None:
    """stp_check on proofs the screen would stop before they reached it (here they go straight
    to the second line): it must reach the same verdicts with no REPL involved."""
    job = minif2f_job("x", "mathd_numbertheory_81", "")
    name = "mathd_numbertheory_81"
    checker = KernelCheck(PROJECT, memory_limit_mb=8192, timeout_s=1200.0, run_as=None)
    try:

        def verdict(proof: str) -> tuple[Verdict, str, tuple[str, ...]]:
            return checker.check(job.header, job.formal_statement, proof, name)

        proved = verdict("  decide")
        assert proved[0] is Verdict.PROVED, proved
        assert set(proved[2]) <= ALLOWED_AXIOMS
        native = verdict("  native_decide")
        assert native[0] is Verdict.UNSOUND and "Lean.ofReduceBool" in native[1], native
        assert verdict("  sorry")[0] is Verdict.INCOMPLETE
        assert verdict("  exact foo_bar_baz")[0] is Verdict.UNSOUND  # does not compile
        # Declarations after the proof are replayed too, and change nothing.
        extra = verdict("  decide\n\ntheorem stp_extra : True := trivial")
        assert extra[0] is Verdict.PROVED, extra
        added = verdict("  exact cheat\n\naxiom cheat : False")  # used before it exists
        assert added[0] is Verdict.UNSOUND
    finally:
        checker.close()
