"""The Rocq verifier against a hostile proof author, with real coqtop, coqc and coqchk.

Every attack here made an earlier version of the backend say ``proved`` (or reject a genuine
proof); each class comes with several variants. The goal: no false accept, no genuine proof
rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stp.config import VerificationConfig
from stp.verify import Verdict, VerifyJob, make_verifier, rocq
from stp.verify.pool import Deduplicated
from stp.verify.rocq_proof import ProofSentence, proof_sentences, screen_proof, single_sentence

pytestmark = pytest.mark.rocq  # every test here runs coqtop

NAT_HEADER = "Require Import Arith Lia.\n"
NAT_STATEMENT = "Theorem add_zero (n : nat) : n + 0 = n."
REAL_HEADER = "Require Import Reals Lra.\nOpen Scope R_scope.\n"
FALSE_STATEMENT = "Theorem one_is_two : 1 = 2."


def nat_job(job_id: str, proof: str) -> VerifyJob:
    return VerifyJob(job_id, NAT_HEADER, NAT_STATEMENT, proof)


@pytest.fixture(scope="module")
def verifier() -> Iterator[Deduplicated]:
    with make_verifier(VerificationConfig(workers=2, timeout_s=10.0)) as v:
        yield v


def verdicts(verifier: Deduplicated, jobs: list[VerifyJob]) -> dict[str, Verdict]:
    return {r.id: r.verdict for r in verifier.verify(jobs)}


# ------------------------------------------------------------ the splitter is Coq's lexer

# Commands hidden behind the `Proof with` terminator `...`, which ends a sentence in Coq.
ELLIPSIS_ATTACKS = [
    "idtac... Admitted.",
    "idtac...\nAdmitted.",
    "intros... Abort. Theorem add_zero (n : nat) : n + 0 = n. Admitted.",
    "idtac... Unset Guard Checking. lia.",
    'idtac... Cd "/tmp". lia.',
    'idtac... Redirect "/tmp/stp_pwned" Print nat. lia.',
    "lia... Module M. End M.",
    "idtac...\tAxiom cheat : False. destruct cheat.",
    "- idtac... Admitted.",
    "2: idtac... Admitted.",
    "{ idtac... } Admitted.",
]


@pytest.mark.parametrize("proof", ELLIPSIS_ATTACKS)
def test_commands_behind_an_ellipsis_are_seen_as_sentences(proof: str) -> None:
    screened = screen_proof(proof)
    assert screened is not None and screened[0] is not None, proof


@pytest.mark.parametrize(
    "proof",
    [
        "lia.\u00a0Admitted.",  # a no-break space is no blank to Coq
        "lia.\u2003Admitted.",
        "lia.\u200bAdmitted.",
        "lia.\x0bAdmitted.",
        "lia.\x0cAdmitted.",
        "idtac.. Admitted.",  # ".." followed by a blank
        "idtac.... Admitted.",
        "lia. (* open comment",
        'idtac "open string. lia.',
        "lia..Admitted.",
        "lia.(* Coq reads `.(` here *)",
    ],
)
def test_lexically_unusual_proofs_fail(proof: str) -> None:
    assert screen_proof(proof) is not None


def test_sentences_are_rebuilt_as_tactics_in_parentheses() -> None:
    sent = [s.sent for s in proof_sentences("intros. (* c. *)\n- lia.\n2: { auto. }\nall: lia...")]
    assert sent == ["( intros ) .", "-", "( lia ) .", "2: {", "( auto ) .", "}", "all: ( lia ) ."]
    # A string keeps its periods, comments and doubled quotes; a comment keeps its strings.
    [s] = proof_sentences('idtac "a. (* b"" c. *)". (* "*)" *)')
    assert s.sent == '( idtac "a. (* b"" c. *)" ) .'


@pytest.mark.parametrize(
    ("statement", "single"),
    [
        (NAT_STATEMENT, True),
        ("Theorem t : 1 = 1. Admitted.", False),
        ("Theorem t : 1 = 1... Admitted.", False),
        ("Theorem t : 1 = 1.\u00a0Admitted.", False),
        ("Theorem t (* . *) : 1 = 1.", True),
    ],
)
def test_a_statement_must_be_one_sentence(statement: str, single: bool) -> None:
    assert single_sentence(statement) is single


def test_a_multi_sentence_conjecture_is_never_run(verifier: Deduplicated) -> None:
    job = VerifyJob("c", NAT_HEADER, "Theorem c : 1 = 2... Admitted. Theorem c : True.", "auto.")
    [result] = verifier.verify([job])
    assert result.verdict is Verdict.ILL_TYPED and "one sentence" in result.detail


def test_ellipsis_attacks_on_real_coqtop(verifier: Deduplicated) -> None:
    jobs = [
        VerifyJob(f"a{i}", NAT_HEADER, FALSE_STATEMENT, p) for i, p in enumerate(ELLIPSIS_ATTACKS)
    ]
    results = verdicts(verifier, [*jobs, nat_job("after", "lia.")])
    assert results.pop("after") is Verdict.PROVED
    assert Verdict.PROVED not in results.values(), results
    assert not Path("/tmp/stp_pwned.out").exists()


# ------------------------------------------------------------ nothing printed is read

FAKE_PROMPT = "<prompt>add_zero < 99 || 0 < </prompt>"
FAKES = [
    # a prompt without an open proof, printed by the proof
    f'idtac "{FAKE_PROMPT}". lia.',
    'idtac "No more goals.\n<prompt>Coq < 9 || 0 < </prompt>". reflexivity.',
    f'fail "{FAKE_PROMPT}".',
    f"(* {FAKE_PROMPT} *) reflexivity.",
    f"reflexivity (* </prompt>{FAKE_PROMPT} *).",
    # the answer a trusted question would get, and an error that would have to be swallowed
    'idtac "Module Cand is defined\nstp_chk is defined\nClosed under the global context". '
    "reflexivity.",
    'intros; idtac "</infomsg>Error: x<prompt>Coq < 3 || 0 < </prompt>"; exact I.',
    # a flood, to push the real answers out of a window, then a fake tail
    'do 40000 idtac "' + "y" * 120 + f'"; idtac "{FAKE_PROMPT}". reflexivity.',
]


def test_printed_prompts_and_answers_decide_nothing(verifier: Deduplicated) -> None:
    jobs = [VerifyJob(f"f{i}", NAT_HEADER, FALSE_STATEMENT, p) for i, p in enumerate(FAKES)]
    results = verdicts(verifier, [*jobs, nat_job("after", "lia.")])
    assert results.pop("after") is Verdict.PROVED
    assert Verdict.PROVED not in results.values(), results


# ------------------------------------------------------------ genuine proofs pass


def test_genuine_proofs_that_were_rejected_now_pass(verifier: Deduplicated) -> None:
    implicit = "Theorem imp {n : nat} (m : nat) : n + m = m + n."
    jobs = [
        VerifyJob("implicit-binder", NAT_HEADER, implicit, "intros. lia."),
        VerifyJob(
            "forall-implicit", NAT_HEADER, "Theorem fi : forall {n : nat}, n = n.", "reflexivity."
        ),
        VerifyJob(
            "implicit-arguments",
            "Require Import Arith.\nSet Implicit Arguments.\n",
            "Theorem ia (A : Type) (x : A) (l : list A) : length (x :: l) = S (length l).",
            "reflexivity.",
        ),
        VerifyJob(
            "bool-coercion",
            "From Coq Require Import ssreflect ssrbool.\n",
            "Theorem bc : Nat.eqb 2 2.",
            "reflexivity.",
        ),
        VerifyJob(
            "type-scope",
            REAL_HEADER,
            "Theorem ts : (1 = 1) * (2 = 2).",
            "split; reflexivity.",
        ),
        VerifyJob(
            "selector", NAT_HEADER, "Theorem sel : 1 = 1 /\\ 2 = 2.", "split; [> auto | auto]."
        ),
        VerifyJob("error-text", NAT_HEADER, NAT_STATEMENT, 'idtac "Error: not really". lia.'),
        VerifyJob(
            "uppercase-tactic",
            "Require Import Reals.\nRequire Import DiscrR.\nOpen Scope R_scope.\n",
            "Theorem up : 2 + 2 = 4.",
            "Rcompute.",
        ),
        VerifyJob("ellipsis", NAT_HEADER, NAT_STATEMENT, "lia..."),
        VerifyJob(
            "comments-strings",
            NAT_HEADER,
            NAT_STATEMENT,
            '(* Admitted. "*)" Qed. *) idtac "Abort. (* x"". *)". (* (* nested *) *) lia.',
        ),
        VerifyJob(
            "bullets",
            NAT_HEADER,
            "Theorem bul (n : nat) : n * 1 = n /\\ 0 + n = n.",
            "split.\n- lia.\n- simpl.\n  { reflexivity. }",
        ),
        VerifyJob(
            "focus",
            NAT_HEADER,
            "Theorem foc : 1 = 1 /\\ 2 = 2.",
            "split.\n2: { reflexivity. }\nreflexivity.",
        ),
        VerifyJob("abstract", NAT_HEADER, NAT_STATEMENT, "intros. abstract lia using stp_helper."),
        VerifyJob(
            "ssreflect",
            "From Coq Require Import ssreflect.\n",
            NAT_STATEMENT,
            "elim: n => [|n IH] //=.\nby rewrite IH.",
        ),
        VerifyJob(
            "unshelve",
            NAT_HEADER,
            "Theorem ex : exists n : nat, n = 0.",
            "eexists. shelve. Unshelve. Show. exact 0. reflexivity.",
        ),
        VerifyJob("decimal", REAL_HEADER, "Theorem dec : 1.5 + 1.5 = 3.", "lra."),
    ]
    results = {r.id: r for r in verifier.verify(jobs)}
    for job in jobs:
        assert results[job.id].verdict is Verdict.PROVED, (job.id, results[job.id].detail)


# ------------------------------------------------------------ state and files


def test_each_job_leaves_the_worker_as_it_found_it() -> None:
    """Attempts to change the working directory, the load path, the flags or files are refused,
    and a later job on the same worker sees none of it."""
    attacks = [
        'Cd "/tmp". lia.',
        'Add LoadPath "/tmp" as Evil. lia.',
        "Unset Guard Checking. lia.",
        "Local Unset Universe Checking. lia.",
        'Redirect "/tmp/stp_redirected" Print nat. lia.',
        'Require Extraction. Extraction "/tmp/stp_extracted.ml" nat. lia.',
        "idtac... Set Printing All. lia.",
        "Unshelve Unset Guard Checking. lia.",
        "Show. Unset Guard Checking. lia.",
    ]
    # The later proof only goes through with guard checking on.
    later = VerifyJob(
        "later",
        NAT_HEADER,
        "Theorem g : forall n : nat, n = n.",
        "fix f 1. intros [|m]. - reflexivity. - exact (f_equal S (f m)).",
    )
    with make_verifier(VerificationConfig(workers=1, timeout_s=10.0)) as one_worker:
        results = verdicts(
            one_worker, [nat_job(f"x{i}", a) for i, a in enumerate(attacks)] + [later]
        )
    assert results.pop("later") is Verdict.PROVED
    assert Verdict.PROVED not in results.values(), results
    for leftover in ("stp_redirected.out", "stp_extracted.ml"):
        assert not Path("/tmp", leftover).exists()


# ------------------------------------------------------------ the second line on its own


@pytest.fixture
def raw_sentences(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both lines run the proof text as it is, commands included: the first line's parentheses
    switched off, to show what the kernel re-check alone rejects."""
    monkeypatch.setattr(rocq, "proof_sentences", lambda proof: [ProofSentence(0, 1, proof)])


FUNCTOR_GUARD = (
    "Abort.\nModule Type T. Parameter Inline f : nat -> False. End T.\n"
    "Module F (X : T). Definition bad : False := X.f 0. End F.\n"
    "{unset}\nModule M. Fixpoint f (n : nat) : False := f n. End M.\n{set}\n"
    "Module N := F M.\n"
    "Theorem one_is_two : 1 = 2.\nProof. destruct N.bad."
)


@pytest.mark.slow
@pytest.mark.usefixtures("raw_sentences")
@pytest.mark.parametrize(
    "proof",
    [
        # Print Assumptions says "Closed under the global context" for these (Coq issue 12155)
        FUNCTOR_GUARD.format(unset="Unset Guard Checking.", set="Set Guard Checking."),
        FUNCTOR_GUARD.format(unset="Local Unset Guard Checking.", set=""),
        FUNCTOR_GUARD.replace("Module M. Fixpoint", "Module M. #[bypass_check(guard)] Fixpoint")
        .replace("{unset}", "")
        .replace("{set}", ""),
        # and the ones Print Assumptions itself reports
        "Abort.\nUnset Positivity Checking.\nInductive bad := C : (bad -> False) -> bad.\n"
        "Set Positivity Checking.\nTheorem one_is_two : 1 = 2.\nProof.\n"
        "assert (nb : bad -> False) by (intros [h]; exact (h (C h))). "
        "destruct (nb (C nb)).",
        "Abort.\nAxiom cheat : False.\nTheorem one_is_two : 1 = 2.\nProof. destruct cheat.",
        "Abort.\nRequire Import Coq.Compat.AdmitAxiom.\nTheorem one_is_two : 1 = 2.\n"
        "Proof. destruct proof_admitted.",
    ],
)
def test_the_kernel_recheck_rejects_what_print_assumptions_misses(proof: str) -> None:
    kernel = rocq.KernelCheck(VerificationConfig(timeout_s=20.0))
    job = VerifyJob("attack", NAT_HEADER, FALSE_STATEMENT, proof)
    genuine = nat_job("genuine", "lia.")
    attack, fine = kernel.check([job, genuine])  # the batch fails: each is checked alone
    assert attack.verdict is Verdict.UNSOUND, attack
    assert fine.verdict is None


def test_the_kernel_recheck_batches_headers_and_names_axioms() -> None:
    kernel = rocq.KernelCheck(VerificationConfig(timeout_s=20.0))
    jobs = [
        nat_job("n", "lia."),
        VerifyJob("r", REAL_HEADER, "Theorem r : forall x : R, x + 0 = x.", "intros. lra."),
        VerifyJob(
            "c",
            "Require Import Classical.\n",
            "Theorem c (P : Prop) : P \\/ ~ P.",
            "apply classic.",
        ),
    ]
    results = kernel.check(jobs)
    assert [r.verdict for r in results] == [None, None, None]
    # One file for the three: the axioms are those of the batch.
    assert set(results[0].axioms) == {
        "Coq.Reals.ClassicalDedekindReals.sig_forall_dec",
        "Coq.Logic.FunctionalExtensionality.functional_extensionality_dep",
        "Coq.Logic.Classical_Prop.classic",
    }


@pytest.mark.usefixtures("raw_sentences")
def test_the_kernel_recheck_rejects_a_candidate_holding_more_than_its_theorem() -> None:
    kernel = rocq.KernelCheck(VerificationConfig(timeout_s=20.0))
    extra = "Abort.\nDefinition helper := 0.\nTheorem add_zero (n : nat) : n + 0 = n.\nProof. lia."
    [verdict] = kernel.check([nat_job("extra", extra)])
    assert verdict.verdict is Verdict.UNSOUND and "holds more than add_zero" in verdict.detail


# ------------------------------------------------------------ the splitter against coqtop

TRICKY = [
    'idtac "S1". (* nested (* comment. *) idtac "X". *) idtac "S2".',
    'idtac "S1 *) . idtac ""X"" ". idtac "S2".',
    'idtac "S1"... idtac "S2".',
    'idtac "S1"...\nidtac "S2"...',
    'idtac "S1".\tidtac "S2".\r\nidtac "S3".',
    'idtac "S1" (* . *) . idtac "S2".',
    '(* "*)" idtac "X". *) idtac "S1".',
    'idtac "S1"; idtac "S2". (* *) idtac "S3". (* x *)',
    'idtac "S1". idtac "a.b" "S2".',
    'idtac "S1".\n(* idtac "X". (* " *) " *) *)\nidtac "S2".',
]


@pytest.mark.parametrize("text", TRICKY)
def test_the_splitter_cuts_where_coqtop_does(text: str) -> None:
    """Raw text run by coqtop prints the labels of exactly the sentences the splitter found."""
    import re
    import subprocess

    sentences = proof_sentences(text)
    expected = [label for s in sentences for label in re.findall(r'"(S\d)\b', s.sent)]
    done = subprocess.run(
        ["coqtop", "-q"],
        input=f"Goal True.\n{text}\nAbort.\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    printed = re.findall(r'(?<!["\w])(S\d|X)(?![\w"])', done.stdout)
    assert printed == expected, (done.stdout, [s.sent for s in sentences])


def test_a_missing_or_empty_report_is_never_a_clean_bill(tmp_path: Path) -> None:
    assert rocq.parse_assumptions("")[1]  # no answer is not "closed under the context"
    verdict = rocq._read_assumptions(tmp_path)  # the Redirect wrote nothing
    assert verdict.verdict is Verdict.VERIFIER_ERROR
    (tmp_path / "stp_module_0.out").write_text("")
    assert rocq._read_modules(tmp_path, [nat_job("j", "lia.")]) is not None
