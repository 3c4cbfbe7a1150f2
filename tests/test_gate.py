"""The conjecture gate: each rejection reason on real coqtop, the Lean checks against the fake
REPL, and that what the gate rejects gets no proof attempts."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path

import pytest

from stp.config import GateConfig, VerificationConfig, load_config
from stp.runs import RunLayout
from stp.selfplay import gate
from stp.selfplay import round as rounds
from stp.selfplay.context import Round
from stp.selfplay.history import RunHistory
from stp.selfplay.records import (
    CONJECTURES_FILE,
    GATE_FILE,
    TARGETS_FILE,
    Conjecture,
    GateOutcome,
    Target,
    read_records,
    write_records,
)
from stp.verify import Verdict, VerifyJob, make_verifier
from stp.verify import gate as checks

HEADER = "Require Import Arith Lia.\n"
SEED = "Theorem seed_add_comm (n m : nat) : n + m = m + n."
MUL_COMM = "Nat.mul_comm : forall n m : nat, n * m = m * n"


def conjecture(cid: str, statement: str, lemma_text: str | None = None) -> Conjecture:
    return Conjecture(
        id=cid,
        header=HEADER,
        formal_statement=f"Theorem {cid} {statement}",
        seed="seed_add_comm",
        seed_statement=SEED,
        seed_proof="intros; lia.",
        lemma="Nat.mul_comm" if lemma_text else None,
        lemma_text=lemma_text,
        key=cid,
    )


# One conjecture per outcome, each rejected by the first check that applies.
ROCQ_CASES = {
    "ill_typed": conjecture("c_ill", ": A B1 A."),
    "ill_typed_sum": conjecture("c_ill_sum", "(n : nat) : n + true = n."),
    "not_a_proposition": conjecture("c_type", ": forall A B : Type, bool."),
    "trivial": conjecture("c_trivial", ": forall b : nat, b = b."),
    "restates_seed": conjecture("c_seed", "(a b : nat) : a + b = b + a."),
    "restates_lemma": conjecture("c_lemma", "(x : nat) : x * 2 = 2 * x.", MUL_COMM),
    "vacuous": conjecture("c_vacuous", "(n : nat) (h : n + 1 = 0) : n * n = n + 7."),
    "refuted": conjecture("c_false", "(n m : nat) : n <= m -> n * m = m + n."),
    "refuted_bool": conjecture("c_false_bool", ": forall a b : bool, andb a b = orb a b."),
    "passes": conjecture("c_passes", "(n : nat) : n * (n + 1) = n * n + n."),
}


@pytest.mark.rocq
def test_each_rejection_reason_on_real_coqtop() -> None:
    conjectures = list(ROCQ_CASES.values())
    with make_verifier(VerificationConfig(workers=2, timeout_s=5.0)) as verifier:
        outcomes = gate.screen(conjectures, verifier, GateConfig(), "rocq")
    got = {o.conjecture: (o.outcome, o.check) for o in outcomes}
    (refute,) = GateConfig().rocq_refutation_tactics
    assert [o.conjecture for o in outcomes] == [c.id for c in conjectures]
    assert got == {
        "c_ill": ("ill_typed", "idtac."),
        "c_ill_sum": ("ill_typed", "idtac."),
        "c_type": ("ill_typed", "idtac."),
        "c_trivial": ("trivial", "reflexivity."),
        "c_seed": ("restatement", "seed: exact stp_given."),
        "c_lemma": ("restatement", "lemma Nat.mul_comm: intros; apply stp_given."),
        "c_vacuous": ("vacuous", "intros; exfalso; lia."),
        "c_false": ("refuted", f"not: {refute}"),
        "c_false_bool": ("refuted", f"not: {refute}"),
        "c_passes": ("passed", ""),
    }
    ill = next(o for o in outcomes if o.conjecture == "c_ill")
    assert "does not elaborate" in ill.detail
    assert gate.counts(outcomes) == {
        "passed": 1,
        "ill_typed": 3,
        "unchecked": 0,
        "trivial": 1,
        "restatement": 2,
        "vacuous": 1,
        "refuted": 2,
    }


@pytest.mark.rocq
def test_the_counterexample_search_refutes_only_false_statements() -> None:
    """Rocq's default refutation finds small counterexamples, through premises that hold by
    computation, and never refutes a true statement (coqtop proves the negation)."""
    false = [
        ": forall n m : nat, n < m -> n < n.",  # needs the premise 0 < 1 discharged
        ": forall A B : Prop, (B -> A) -> A.",  # A := False, B := False
        ": forall b : bool, b = true -> b = false.",
        ": forall n m, n <= n -> forall k, k < m.",
    ]
    true = [
        ": forall n m : nat, n + m = m + n.",
        ": forall A B : Prop, A /\\ B -> B.",
        ": forall b : bool, negb (negb b) = b.",
        "(n : nat) : 0 < n -> exists m, n = S m.",
        "{A : Type} (l : list A) : length (l ++ l) = length l + length l.",
    ]
    cases = [conjecture(f"f{i}", s) for i, s in enumerate(false)]
    cases += [conjecture(f"t{i}", s) for i, s in enumerate(true)]
    settings = GateConfig(rocq_trivial_tactics=[], rocq_restatement_tactics=[])
    with make_verifier(VerificationConfig(workers=2, timeout_s=5.0)) as verifier:
        outcomes = gate.screen(cases, verifier, settings, "rocq")
    assert [o.outcome for o in outcomes] == ["refuted"] * len(false) + ["passed"] * len(true)


@pytest.mark.rocq
def test_an_ill_typed_statement_is_its_own_verdict_never_a_verifier_error() -> None:
    jobs = [
        VerifyJob("type", HEADER, "Theorem c : A B1 A.", "auto."),
        VerifyJob("form", HEADER, "Theorem c nat.", "auto."),
        VerifyJob("two", HEADER, "Theorem c : True. Check 1.", "auto."),
    ]
    with make_verifier(VerificationConfig(workers=1, timeout_s=5.0)) as verifier:
        assert [r.verdict for r in verifier.verify(jobs)] == [Verdict.ILL_TYPED] * 3


def test_a_disabled_gate_passes_everything_unchecked() -> None:
    class NoVerifier:
        def verify(self, jobs, progress=None):
            raise AssertionError("the disabled gate checks nothing")

        def close(self) -> None:
            pass

    outcomes = gate.screen(
        list(ROCQ_CASES.values()), NoVerifier(), GateConfig(enabled=False), "rocq"
    )
    assert {o.outcome for o in outcomes} == {"passed"}
    assert not gate.checks_statements(GateConfig(), "isabelle")


def test_lean_statements_become_one_type() -> None:
    assert (
        checks.statement_type("theorem t (n : Nat) {m : Nat} (h : n < m) : n ≤ m := by", "lean")
        == "∀ (n : Nat) {m : Nat} (h : n < m), n ≤ m"
    )
    assert checks.statement_type("theorem t : (1 : Nat) = 1 := by", "lean") == "(1 : Nat) = 1"
    assert checks.statement_type("theorem t (n : Nat) := by", "lean") is None
    assert checks.lemma_type("Nat.add_comm (n m : Nat) : n + m = m + n", "lean") == (
        "∀ (n m : Nat), n + m = m + n"
    )
    assert checks.given_statement("P", "theorem c (x : Nat) : x = x := by", "lean") == (
        "theorem stp_gate_given (stp_given : P) : ∀ (x : Nat), x = x := by"
    )
    assert checks.given_statement("P", "Theorem c (x : nat) : x = x.", "rocq") == (
        "Theorem stp_gate_given (stp_given : P) : forall (x : nat), x = x."
    )
    assert checks.negated_statement("Theorem c (x : nat) : x = x.", "rocq") == (
        "Theorem stp_gate_refute : ~ (forall (x : nat), x = x)."
    )
    assert checks.negated_statement("theorem c (x : Nat) : x = x := by", "lean") == (
        "theorem stp_gate_refute : ¬ (∀ (x : Nat), x = x) := by"
    )
    assert checks.negated_statement("theorem c (x : Nat) := by", "lean") is None


FAKE = Path(__file__).with_name("fake_lean_repl.py")


def lean_conjecture(cid: str, statement: str) -> Conjecture:
    return Conjecture(
        id=cid,
        header="import Lean\n\n",
        formal_statement=f"theorem {cid} {statement} := by",
        seed="s",
        seed_statement="theorem s (n : Nat) : n + 0 = n := by",
        seed_proof="  simp",
        lemma=None,
        lemma_text=None,
        key=cid,
    )


@pytest.mark.parametrize(
    ("settings", "plain_outcome"),
    [
        ({}, "trivial"),
        ({"lean_trivial_tactics": ["simp -- FAKE_WRONG"]}, "restatement"),
        (
            {
                "lean_trivial_tactics": ["simp -- FAKE_WRONG"],
                "lean_restatement_tactics": ["exact stp_given -- FAKE_WRONG"],
            },
            "vacuous",
        ),
        (
            {
                "lean_trivial_tactics": ["simp -- FAKE_WRONG"],
                "lean_restatement_tactics": ["exact stp_given -- FAKE_WRONG"],
                "lean_vacuous_tactics": ["omega -- FAKE_WRONG"],
            },
            "refuted",
        ),
    ],
)
def test_the_lean_gate_through_the_lean_backend(tmp_path, settings, plain_outcome) -> None:
    """The fake REPL answers an ill-typed statement with an error, ``sorry`` with its warning,
    a command marked FAKE_WRONG with unsolved goals and anything else as proved: each check
    of the gate runs as a Lean job, indented as a tactic block."""
    config = VerificationConfig(
        backend="lean",
        repl_cmd=f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}",
        lean_project=str(tmp_path),
        workers=1,
        timeout_s=5.0,
        lean_kernel_check="off",
    )
    cases = [
        lean_conjecture("ill", "(n : Nat) : n + FAKE_ILL_TYPED = n"),
        lean_conjecture("hard", "(n : Nat) : n * n = n FAKE_WRONG"),
        lean_conjecture("plain", "(n : Nat) : n + 0 = n"),
    ]
    with make_verifier(config) as verifier:
        outcomes = gate.screen(cases, verifier, GateConfig(**settings), "lean")
    assert [o.outcome for o in outcomes] == ["ill_typed", "passed", plain_outcome]
    assert outcomes[0].check == "sorry"


@pytest.mark.rocq
def test_gated_out_conjectures_get_no_proof_attempts(tmp_path) -> None:
    """The round's gate stage writes an outcome per conjecture; the targets stage then gives
    proof attempts to the dataset and to the conjectures that passed, and to no other."""
    config = load_config(
        None,
        [f"run.output_dir={tmp_path}", "run.name=g", "verification.workers=2"],
    )
    dataset = [Target("d1", HEADER, "Theorem d1 (n : nat) : n + 0 = n.")]
    r = Round(
        config=config,
        layout=RunLayout.of(config),
        index=0,
        model="unused",
        dataset=dataset,
        history=RunHistory(),
        log=lambda _: None,
    )
    write_records(r.path(CONJECTURES_FILE), ROCQ_CASES.values())
    info = rounds.gate_stage(r)
    assert info["checked"] and info["passed"] == 1 and info["ill_typed"] == 3
    assert len(read_records(r.path(GATE_FILE), GateOutcome)) == len(ROCQ_CASES)
    rounds.targets(r)
    targeted = [t.id for t in read_records(r.path(TARGETS_FILE), Target)]
    assert targeted == ["d1", "c_passes"]

    # selection.max_conjectures caps the conjectures that passed, after the gate
    many = [dataclasses.replace(ROCQ_CASES["passes"], id=f"p{i}", key=f"p{i}") for i in range(3)]
    write_records(r.path(CONJECTURES_FILE), many)
    rounds.gate_stage(r)
    r.config.selection.max_conjectures = 2
    rounds.targets(r)
    assert [t.id for t in read_records(r.path(TARGETS_FILE), Target)] == ["d1", "p0", "p1"]
