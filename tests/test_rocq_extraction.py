"""Extraction end to end with the real Rocq verifier (warm coqtop workers)."""

import json
import shutil

import pytest

from stp.cli import main
from stp.data import load_statements
from stp.data.corpus import Lemma, cites_target, load_corpus
from stp.data.rocq_corpus import extract_rocq, library_lemmas, stdlib_theories
from stp.verify.types import Verdict, VerifyJob

pytestmark = pytest.mark.rocq  # every test here runs coqtop

STDLIB_SAMPLE = ("Arith/EqNat.v", "Bool/BoolOrder.v", "Lists/ListDec.v")


class CountingVerifier:
    """The real verifier, counting the jobs it is asked to check."""

    def __init__(self, inner):
        self.inner = inner
        self.checked = 0

    def verify(self, jobs, progress=None):
        self.checked += len(jobs)
        return self.inner.verify(jobs, progress)

    def close(self):
        self.inner.close()


@pytest.fixture
def sample_theories(tmp_path):
    """A copy of three real stdlib files: their logical paths are the installed ones."""
    real = stdlib_theories()
    theories = tmp_path / "theories"
    for relative in STDLIB_SAMPLE:
        (theories / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real / relative, theories / relative)
    return theories


@pytest.fixture
def rocq_verifier():
    from stp.config import VerificationConfig
    from stp.verify import make_verifier

    with make_verifier(VerificationConfig(workers=2, timeout_s=30)) as verifier:
        yield CountingVerifier(verifier)


def test_extraction_checks_splits_and_resumes(tmp_path, sample_theories, rocq_verifier):
    out = tmp_path / "corpus"
    folders = ["Arith", "Bool", "Lists"]
    summary = extract_rocq(out, rocq_verifier, modules=folders, theories=sample_theories)
    corpus = load_corpus(out)
    kept = corpus.theorems
    assert summary.files_parsed == 3 and sum(summary.kept.values()) == len(kept) > 15
    assert rocq_verifier.checked == len(kept) + sum(
        n for why, n in summary.rejected.items() if why in {v.value for v in Verdict}
    )
    # Every kept theorem checks in exactly its recorded form and does not cite its target.
    recheck = [
        VerifyJob(t.name, t.statement.header, t.statement.formal_statement, t.proof) for t in kept
    ]
    assert all(r.proved for r in rocq_verifier.inner.verify(recheck))
    assert not any(cites_target(t.proof, t) for t in kept)
    by_name = {t.name: t for t in kept}
    eqb = by_name["stp_Arith_EqNat_eq_nat_is_eq"]
    assert (
        eqb.statement.source == "coq-stdlib"
        and "Require Import Coq.Arith.EqNat." in eqb.statement.header
    )
    assert (
        "eq_nat_is_eq" in eqb.forbidden_names
        and "Coq.Arith.EqNat.eq_nat_is_eq" in eqb.forbidden_names
    )
    # Section variables of ListDec became binders.
    assert any(
        t.name.startswith("stp_Lists_ListDec_")
        and "(A : Type) (dec : decidable_eq A)" in t.statement.formal_statement
        for t in kept
    )
    # The lemma index is every stdlib file's theorems (here the sample's); proofs resolve to it.
    sample_modules = {"Coq.Arith.EqNat", "Coq.Bool.BoolOrder", "Coq.Lists.ListDec"}
    assert {lemma.module for lemma in corpus.lemmas} == sample_modules
    assert any(t.lemmas for t in kept)
    assert all(lemma in corpus.lemmas for t in kept for lemma in t.lemmas)
    assert corpus.conjecture_examples and all(
        e.prompt().endswith("Theorem ") for e in corpus.conjecture_examples
    )
    heldout = load_statements(out / "heldout.jsonl", "rocq")
    assert [s.name for s in heldout] == [t.name for t in corpus.heldout]
    assert (out / "corpus.txt").read_text().count("Theorem stp_") >= len(corpus.sft)
    # A rerun reads every verdict from the cache: nothing is checked again.
    before = rocq_verifier.checked
    again = extract_rocq(out, rocq_verifier, modules=folders, theories=sample_theories)
    assert rocq_verifier.checked == before and again.kept == summary.kept
    assert load_corpus(out) == corpus


@pytest.mark.slow
def test_cli_extracts_a_capped_subset_of_the_real_stdlib(tmp_path, capsys):
    out = tmp_path / "corpus"
    argv = [
        "data",
        "extract-rocq",
        "--out",
        str(out),
        "--modules",
        "Arith,Bool",
        "--max-theorems",
        "80",
    ]
    assert main([*argv, "--set", "verification.workers=2"]) == 0
    printed = capsys.readouterr().out
    assert "kept" in printed and "over --max-theorems" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < sum(summary["kept"].values()) <= 80


def test_library_lemmas_types_what_only_functors_state():
    # Nat.add_comm comes from a functor PeanoNat includes: no stdlib file states it in text.
    names = ["Nat.add_comm", "Z.le_elim", "Nat.add", "Nat.no_such_lemma", "PeanoNat.Nat.add_comm"]
    lemmas = library_lemmas(names, ["Coq.Arith.PeanoNat", "Coq.ZArith.BinInt"])
    assert lemmas == [
        Lemma(
            "Nat.add_comm", "Nat.add_comm : forall n m : nat, n + m = m + n", "Coq.Arith.PeanoNat"
        )
    ]  # a tactic, a definition and an unknown name are not lemmas; one entry per constant
    assert library_lemmas([], ["Coq.Arith.PeanoNat"]) == []
