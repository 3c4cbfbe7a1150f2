"""The Rocq backend and the verification layer, with real coqtop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stp.config import VerificationConfig
from stp.verify import Verdict, VerifierUnavailableError, VerifyJob, make_verifier
from stp.verify.pool import Deduplicated, PoolVerifier
from stp.verify.rocq import (
    ALLOWED_AXIOMS,
    RocqWorker,
    coqtop_version,
    parse_statement,
)
from stp.verify.rocq_proof import screen_proof

pytestmark = pytest.mark.rocq  # every test here runs coqtop

NAT_HEADER = "Require Import Arith Lia.\n"
NAT_STATEMENT = "Theorem add_zero (n : nat) : n + 0 = n."
REAL_HEADER = "Require Import Reals Lra.\nOpen Scope R_scope.\n"
REAL_STATEMENT = "Theorem real_add_zero : forall x : R, x + 0 = x."
ROOT = Path(__file__).resolve().parents[1]


def nat_job(job_id: str, proof: str) -> VerifyJob:
    return VerifyJob(job_id, NAT_HEADER, NAT_STATEMENT, proof)


@pytest.fixture(scope="module")
def verifier() -> Iterator[Deduplicated]:
    with make_verifier(VerificationConfig(workers=2, timeout_s=5.0)) as v:
        yield v


# ------------------------------------------------------------------ pure functions


@pytest.mark.parametrize(
    ("proof", "verdict"),
    [
        ("intros. lia.", None),
        ("induction n.\n- reflexivity.\n- simpl. { rewrite IHn. reflexivity. }", None),
        ("all: lia.", None),
        ("(intros; lia).", None),
        ("intros. Nat.order.", None),  # qualified tactic names are tactics, not commands
        ("intros H. Z.swap_greater. exact H.", None),
        ("Z.admit.", Verdict.INCOMPLETE),
        ("2: { lia. } (* a comment. Print. *) lia.", None),
        ('idtac "Admitted. Print Assumptions". lia.', None),
        ("Admitted.", Verdict.INCOMPLETE),
        ("intros. admit.", Verdict.INCOMPLETE),
        ("try give_up.", Verdict.INCOMPLETE),
        ("Abort.", Verdict.INCOMPLETE),
        ("Axiom a : False. lia.", Verdict.UNSOUND),
        ("Section S. Hypothesis h : False.", Verdict.UNSOUND),
        ("Unset Guard Checking. lia.", Verdict.UNSOUND),
        ('Redirect "out" Print nat.', Verdict.UNSOUND),
        ('Extraction "f.ml" nat.', Verdict.UNSOUND),
        ('Declare ML Module "ltac2_plugin".', Verdict.UNSOUND),
        ("#[bypass_check(guard)] lia.", Verdict.UNSOUND),
        ("BackTo 1.", Verdict.UNSOUND),
        ("Quit.", Verdict.UNSOUND),
        ("Drop.", Verdict.UNSOUND),
        ('(* "*)" Quit. *) lia.', None),  # Coq lexes the string inside the comment
        ('(* "*)" Quit. (* " *) lia.', Verdict.FAILED),  # ... so this comment never ends
        ("intros. lia", Verdict.FAILED),  # no final period
        ("lia. (* unclosed", Verdict.FAILED),
        ("", Verdict.FAILED),
    ],
)
def test_screen_proof_allows_only_tactic_sentences(proof: str, verdict: Verdict | None) -> None:
    screened = screen_proof(proof)
    assert (screened[0] if screened else None) is verdict


def test_parse_statement_turns_binders_into_forall() -> None:
    parsed = parse_statement("Theorem foo (a b : nat) (h : a = b) :\n  b = a.")
    assert (parsed.name, parsed.type) == ("foo", "forall (a b : nat) (h : a = b), b = a")
    assert parse_statement("Theorem bar : forall x : nat, x = x.").type == ("forall x : nat, x = x")
    with pytest.raises(ValueError):
        parse_statement("Definition x := 1.")


# ------------------------------------------------------------------ real coqtop


def test_honest_proofs_are_proved_and_failures_carry_positions(verifier: Deduplicated) -> None:
    jobs = [
        nat_job("lia", "lia."),
        nat_job("bullets", "induction n.\n- reflexivity.\n- simpl. { rewrite IHn. reflexivity. }"),
        nat_job("wrong", "intros.\n  reflexivity."),
        nat_job("garbage", "intros.\nfoo_tactic_that_does_not_exist."),
        nat_job("extra", "lia. lia."),  # the second lia fails: the file would not compile
    ]
    results = {r.id: r for r in verifier.verify(jobs)}
    assert results["lia"].verdict is Verdict.PROVED
    assert results["lia"].axioms == ()
    assert results["lia"].assistant_version.startswith("The Coq Proof Assistant, version")
    assert results["lia"].backend == "rocq"
    assert results["bullets"].verdict is Verdict.PROVED
    assert results["wrong"].verdict is Verdict.FAILED
    assert (results["wrong"].messages[0].line, results["wrong"].messages[0].column) == (2, 2)
    assert results["garbage"].verdict is Verdict.FAILED
    assert "foo_tactic_that_does_not_exist" in results["garbage"].messages[0].text
    assert results["garbage"].messages[0].line == 2
    assert results["extra"].verdict is Verdict.FAILED


def test_qualified_tactic_names_are_checked_not_rejected(verifier: Deduplicated) -> None:
    job = VerifyJob(
        "order",
        "Require Import Arith.\n",
        "Theorem t (n m : nat) : n < m -> n <= m.",
        "intros. Nat.order.",
    )
    assert verifier.verify([job])[0].verdict is Verdict.PROVED


def test_citing_a_forbidden_name_is_unsound_and_keyed_apart(verifier: Deduplicated) -> None:
    forbidden = ("add_0_r", "Nat.add_0_r")
    jobs = [
        VerifyJob("cites", NAT_HEADER, NAT_STATEMENT, "intros. apply Nat.add_0_r.", forbidden),
        VerifyJob("free", NAT_HEADER, NAT_STATEMENT, "intros. apply Nat.add_0_r."),
        VerifyJob("other", NAT_HEADER, NAT_STATEMENT, "intros. lia.", forbidden),
    ]
    cites, free, other = verifier.verify(jobs)
    assert cites.verdict is Verdict.UNSOUND and "Nat.add_0_r" in cites.detail
    assert free.verdict is Verdict.PROVED and other.verdict is Verdict.PROVED


def test_real_number_proofs_use_allowed_stdlib_axioms(verifier: Deduplicated) -> None:
    [result] = verifier.verify([VerifyJob("r", REAL_HEADER, REAL_STATEMENT, "intros. lra.")])
    assert result.verdict is Verdict.PROVED, result.detail
    assert set(result.axioms) == {
        "Coq.Reals.ClassicalDedekindReals.sig_forall_dec",
        "Coq.Logic.FunctionalExtensionality.functional_extensionality_dep",
    }
    assert set(result.axioms) <= ALLOWED_AXIOMS


def test_allowed_axioms_exist_in_the_standard_library() -> None:
    modules = sorted({name.rsplit(".", 1)[0] for name in ALLOWED_AXIOMS})
    # Eq_rect_eq is a module inside Coq.Logic.Eqdep, not a library of its own.
    requires = "".join(f"Require {m.removesuffix('.Eq_rect_eq')}.\n" for m in modules)
    script = requires + "".join(f"Print Assumptions {name}.\n" for name in sorted(ALLOWED_AXIOMS))
    done = subprocess.run(
        ["coqtop", "-q"], input=script, capture_output=True, text=True, timeout=120, check=False
    )
    assert "Error" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.stdout.count("Axioms:") == len(ALLOWED_AXIOMS)


def test_idtac_cannot_fake_a_verdict(verifier: Deduplicated) -> None:
    fake = (
        'idtac "No more goals.\n<prompt>Coq < 9 || 0 < </prompt>Closed under the global '
        'context\n<prompt>Coq < 9 || 0 < </prompt>". reflexivity.'
    )
    results = verifier.verify([nat_job("fake", fake), nat_job("after", "lia.")])
    assert [r.verdict for r in results] == [Verdict.FAILED, Verdict.PROVED]


def test_banned_commands_are_rejected_and_later_jobs_unaffected(verifier: Deduplicated) -> None:
    jobs = [
        nat_job("admitted", "Admitted."),
        nat_job("admit", "admit."),
        nat_job("axiom", "Axiom cheat : forall n, n + 0 = n. apply cheat."),
        nat_job("section", "Section S. Hypothesis h : False."),
        nat_job("quit", "Quit."),
        nat_job("redirect", 'Redirect "out" Print nat. lia.'),
        nat_job("after", "lia."),
    ]
    verdicts = {r.id: r.verdict for r in verifier.verify(jobs)}
    assert verdicts == {
        "admitted": Verdict.INCOMPLETE,
        "admit": Verdict.INCOMPLETE,
        "axiom": Verdict.UNSOUND,
        "section": Verdict.UNSOUND,
        "quit": Verdict.UNSOUND,
        "redirect": Verdict.UNSOUND,
        "after": Verdict.PROVED,
    }


@pytest.mark.slow
def test_loop_times_out_and_the_worker_is_interrupted_not_replaced() -> None:
    config = VerificationConfig(timeout_s=3.0)
    version = coqtop_version(config.coqtop)
    made: list[RocqWorker] = []

    def new_worker() -> RocqWorker:
        made.append(RocqWorker(config, version))
        return made[-1]

    loop = "let rec loop x := (idtac; loop x) in loop 0."
    with PoolVerifier("rocq", version, new_worker, size=1, jobs_per_worker=100) as pool:
        results = pool.verify(
            [nat_job("loop", f"{loop}\n{loop}"), nat_job("after", "lia."), nat_job("n", "nia.")]
        )
    assert [r.verdict for r in results] == [Verdict.TIMEOUT, Verdict.PROVED, Verdict.PROVED]
    assert len(made) == 1  # interrupted and sent back to the header's state, still warm


@pytest.mark.slow
def test_memory_exhaustion_fails_the_proof_after_a_retry_and_spares_the_next_job() -> None:
    """A proof that exhausts the memory limit fails, as it would under coqc; it is run once
    more on a fresh coqtop first, so memory an earlier job used cannot decide its verdict."""
    config = VerificationConfig(workers=1, timeout_s=20.0, memory_limit_mb=1024)
    hog = "pose (l := List.repeat 0 100000000). vm_compute in l. lia."
    with make_verifier(config) as verifier:
        results = verifier.verify([nat_job("hog", hog), nat_job("after", "lia.")])
    assert [r.verdict for r in results] == [Verdict.FAILED, Verdict.PROVED]
    assert "out of memory" in results[0].detail.lower()  # coqtop's error, or its death


def test_flooding_output_fails_the_proof_and_spares_the_worker(verifier: Deduplicated) -> None:
    """Output that is cut is never read: the proof that printed it fails."""
    flood = 'do 30000 idtac "' + "x" * 200 + '". lia.'
    results = verifier.verify([nat_job("flood", flood), nat_job("after", "lia.")])
    assert [r.verdict for r in results] == [Verdict.FAILED, Verdict.PROVED]
    assert "printed more than" in results[0].detail


def test_duplicates_are_checked_once_and_fanned_out(verifier: Deduplicated) -> None:
    calls: list[int] = []
    inner = verifier.inner

    class Counting:
        def verify(self, jobs, progress=None):  # type: ignore[no-untyped-def]
            calls.append(len(jobs))
            return inner.verify(jobs, progress)

        def close(self) -> None:
            pass

    ticks: list[int] = []
    jobs = [nat_job(f"copy{i}", "lia.") for i in range(5)] + [nat_job("other", "reflexivity.")]
    results = Deduplicated(Counting()).verify(jobs, progress=ticks.append)
    assert calls == [2]
    assert [r.id for r in results] == [j.id for j in jobs]
    assert [r.verdict for r in results] == [Verdict.PROVED] * 5 + [Verdict.FAILED]
    assert sum(ticks) == len(jobs)


def test_jobs_with_different_headers_in_one_batch(verifier: Deduplicated) -> None:
    jobs = [
        VerifyJob("r1", REAL_HEADER, REAL_STATEMENT, "intros. ring."),
        nat_job("n1", "lia."),
        VerifyJob("bad-header", "Require Import NoSuchLibrary.\n", NAT_STATEMENT, "lia."),
        VerifyJob("bad-statement", NAT_HEADER, "Theorem x : no_such_thing.", "auto."),
        nat_job("n2", "nia."),
    ]
    results = verifier.verify(jobs)
    assert [r.id for r in results] == [j.id for j in jobs]
    assert [r.verdict for r in results] == [
        Verdict.PROVED,
        Verdict.PROVED,
        Verdict.VERIFIER_ERROR,  # the header is the set-up's problem
        Verdict.ILL_TYPED,  # the statement is the dataset's (or the conjecturer's)
        Verdict.PROVED,
    ]
    assert "NoSuchLibrary" in results[2].detail


def test_each_statement_is_elaborated_apart_from_the_others() -> None:
    """One worker takes the jobs of a statement one after another from the state with its
    proof just opened: a statement that does not elaborate fails all its own jobs and no
    other, and proofs of a statement never see another statement's proof state."""
    other = "Theorem mul_one (n : nat) : n * 1 = n."
    jobs = [
        VerifyJob("bad1", NAT_HEADER, "Theorem x : no_such_thing.", "auto."),
        nat_job("n1", "lia."),
        VerifyJob("m1", NAT_HEADER, other, "lia."),
        VerifyJob("bad2", NAT_HEADER, "Theorem x : no_such_thing.", "lia."),
        nat_job("n2", "intros. reflexivity."),
        VerifyJob("m2", NAT_HEADER, other, "induction n; simpl; lia."),
        nat_job("n3", "induction n; simpl; congruence."),
    ]
    with make_verifier(VerificationConfig(workers=1, timeout_s=5.0)) as verifier:
        verdicts = {r.id: r.verdict for r in verifier.verify(jobs)}
    assert verdicts == {
        "bad1": Verdict.ILL_TYPED,
        "bad2": Verdict.ILL_TYPED,
        "n1": Verdict.PROVED,
        "n2": Verdict.FAILED,
        "n3": Verdict.PROVED,
        "m1": Verdict.PROVED,
        "m2": Verdict.PROVED,
    }


def test_headers_sharing_their_first_sentences_do_not_leak_into_each_other() -> None:
    """A worker loads a header from the state after the sentences it shares with the last
    one: what the longer header added is gone when a shorter one comes back."""
    arith = "Require Import Arith.\n"
    arith_lia = "Require Import Arith.\nRequire Import Lia.\n"
    zarith = "Require Import ZArith.\nRequire Import Lia.\n"
    unfinished = arith_lia.rstrip(".\n")  # the last sentence never ends: coqtop never runs it
    with make_verifier(VerificationConfig(workers=1, timeout_s=5.0)) as verifier:
        verdicts = [
            r.verdict
            for batch in ([arith, arith_lia], [arith], [zarith, arith_lia], [arith, unfinished])
            for r in verifier.verify(
                [VerifyJob(f"{i}", h, NAT_STATEMENT, "lia.") for i, h in enumerate(batch)]
            )
        ]
    failed, proved = Verdict.FAILED, Verdict.PROVED  # lia needs Require Import Lia
    assert verdicts == [failed, proved, failed, proved, proved, failed, Verdict.VERIFIER_ERROR]


def _coqtop_children() -> set[int]:
    """Our child processes that run coqtop (from /proc: nothing is looked up by name)."""
    pids = set()
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        pids.update(int(p) for p in children.read_text().split())
    return {p for p in pids if Path(f"/proc/{p}/comm").read_text().startswith("coqtop")}


def test_workers_are_retired_and_close_kills_them() -> None:
    config = VerificationConfig(timeout_s=3.0)
    version = coqtop_version(config.coqtop)
    made: list[RocqWorker] = []

    def new_worker() -> RocqWorker:
        made.append(RocqWorker(config, version))
        return made[-1]

    before = _coqtop_children()
    with PoolVerifier("rocq", version, new_worker, size=1, jobs_per_worker=2) as pool:
        results = pool.verify([nat_job(str(i), "lia.") for i in range(5)])
        assert len(_coqtop_children() - before) == 1  # retired workers are gone
    assert [r.verdict for r in results] == [Verdict.PROVED] * 5
    assert len(made) == 3  # 2 + 2 + 1 jobs
    # None of ours is left (a coqtop that an earlier test left behind may end meanwhile).
    assert not _coqtop_children() - before


def test_missing_coqtop_and_backend_are_one_line_errors() -> None:
    with pytest.raises(VerifierUnavailableError, match="apt-get install -y coq"):
        make_verifier(VerificationConfig(coqtop="no-such-coqtop"))
    with pytest.raises(VerifierUnavailableError, match="no verifier backend 'hol4'"):
        make_verifier(VerificationConfig(backend="hol4"))  # type: ignore[arg-type]


# ------------------------------------------------------------------ the CLI


@pytest.mark.slow
def test_cli_end_to_end(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "header": NAT_HEADER, "formal_statement": NAT_STATEMENT, "proof": "lia."},
        {"id": "b", "header": NAT_HEADER, "formal_statement": NAT_STATEMENT, "proof": "lia."},
        {
            "id": "c",
            "header": NAT_HEADER,
            "formal_statement": NAT_STATEMENT,
            "proof": "reflexivity.",
        },
        {"id": "d", "header": NAT_HEADER, "formal_statement": NAT_STATEMENT},
        {
            "id": "e",
            "name": "x",
            "split": "valid",
            "source": "minif2f",
            "header": NAT_HEADER,
            "formal_statement": NAT_STATEMENT,
            "proof": "Admitted.",
        },
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stp",
            "verify",
            "--backend",
            "rocq",
            str(source),
            "--out",
            str(out),
            "--workers",
            "1",
            "--timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in results] == ["a", "b", "c", "d", "e", "line-6"]
    assert [r["verdict"] for r in results] == [
        "proved",
        "proved",
        "failed",
        "verifier_error",
        "incomplete",
        "verifier_error",
    ]
    assert "proved 2" in done.stdout and "proofs/s" in done.stdout
    assert f"{source}:4: missing or non-string field 'proof'" in done.stderr
    assert f"{source}:6: not valid JSON" in done.stderr


def test_a_header_that_kills_coqtop_is_a_verifier_error_and_spares_the_next_job(
    verifier: Deduplicated,
) -> None:
    jobs = [
        VerifyJob("dies", "Require Import Arith.\nQuit.\n", NAT_STATEMENT, "lia."),
        nat_job("after", "lia."),
    ]
    dies, after = verifier.verify(jobs)
    assert dies.verdict is Verdict.VERIFIER_ERROR and "header" in dies.detail
    assert after.verdict is Verdict.PROVED
