import pytest

from stp.data import load_benchmark
from stp.languages import language
from stp.languages.lean import LEAN
from stp.languages.rocq import ROCQ, THEOREM_KEYWORDS, rocq_sentence_end, rocq_sentences
from stp.verify.rocq import ParsedStatement, parse_statement
from stp.verify.rocq_proof import proof_sentences


def test_assemble_matches_sources_md():
    s = load_benchmark("minif2f", "rocq", "valid")[0]
    assert ROCQ.assemble(s.header, s.formal_statement, "lia.") == (
        s.header + s.formal_statement + "\nProof.\n" + "lia." + "\nQed."
    )
    t = load_benchmark("minif2f", "lean", "valid")[0]
    assert (
        LEAN.assemble(t.header, t.formal_statement, "  simp")
        == t.header + t.formal_statement + "\n  simp"
    )


def test_prompt_plus_completion_is_the_checked_file():
    s = load_benchmark("minif2f", "rocq", "valid")[0]
    prompt = ROCQ.prover_prompt(s.header, s.formal_statement)
    completion = ROCQ.prover_completion("intros. lia.")
    assert (prompt + completion).endswith(
        ROCQ.assemble(s.header, s.formal_statement, "intros. lia.") + "\n```"
    )
    assert ROCQ.parse_proof(completion) == "intros. lia."


@pytest.mark.parametrize(
    ("completion", "proof"),
    [
        ("intros.\nlia.\nQed.\n```\nsome chatter", "intros.\nlia."),
        (
            "intros.\nlia.\nQed.",
            "intros.\nlia.",
        ),  # no fence: truncated or stopped at the stop string
        ("intros.\nsimpl", "intros.\nsimpl"),  # truncated mid-proof: kept, the verifier decides
        ("Theorem t : True.\nProof.\nexact I.\nQed.\n```", "exact I."),  # restated statement
    ],
)
def test_parse_rocq_proof(completion, proof):
    assert ROCQ.parse_proof(completion, "Theorem t : True.") == proof


def test_parse_lean_proof_strips_restated_statement():
    stmt = "theorem t : 1 + 1 = 2 := by"
    assert LEAN.parse_proof("  norm_num\n```") == "  norm_num"
    assert LEAN.parse_proof(f"{stmt}\n  norm_num\n```\n", stmt) == "  norm_num"


@pytest.mark.parametrize("lang", [ROCQ, LEAN])
@pytest.mark.parametrize(
    "proof", ["intros. lia.", "  norm_num\n  simp", "  induction n\n  all_goals simp"]
)
def test_a_training_target_parses_back_to_its_proof(lang, proof):
    # the model learns to write exactly what the verifier will check, indentation included
    assert lang.parse_proof(lang.prover_completion(f"\n{proof}\n")) == proof


def test_a_lean_training_target_keeps_the_tactic_block_indented():
    stmt = "theorem t : 1 + 1 = 2 := by"
    file = LEAN.prover_prompt("", stmt) + LEAN.prover_completion("  norm_num")
    assert f"{stmt}\n  norm_num\n```" in file


def test_informal_statement_is_a_comment():
    prompt = LEAN.prover_prompt("import Mathlib\n", "theorem t : True := by", "Show -/ truth.")
    assert (
        "/-- Show   truth. -/\ntheorem t" in prompt
    )  # a '-/' in the text cannot close the comment early


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("foo (n : nat) : n + 0 = n.\nProof. lia. Qed.\n```", "Theorem c1 (n : nat) : n + 0 = n."),
        ("bar : forall x : R, (x * 1 = x)%R.```", "Theorem c1 : forall x : R, (x * 1 = x)%R."),
        ("baz : 1.5 = 1.5", None),  # no sentence end: truncated
        ("(* no name *) : True.", None),
        ("qux.", None),  # no type
    ],
)
def test_parse_rocq_conjecture(completion, expected):
    assert ROCQ.parse_conjecture(completion, "c1") == expected


def test_parse_lean_conjecture():
    assert LEAN.parse_conjecture("foo (x : ℕ) : x + 0 = x := by\n  simp\n```", "c2") == (
        "theorem c2 (x : ℕ) : x + 0 = x := by"
    )
    assert LEAN.parse_conjecture("foo (x : ℕ) x + 0 = x", "c2") is None


def test_conjecturer_round_trip():
    prompt = ROCQ.conjecturer_prompt(
        "Require Import Arith.\n",
        "Theorem s : 0 = 0.",
        "reflexivity.",
        "Nat.add_0_r : forall n, n + 0 = n",
    )
    assert prompt.endswith("Theorem ") and "Nat.add_0_r" in prompt and "Qed." in prompt
    completion = ROCQ.conjecture_completion("Theorem new (n : nat) : n + 0 + 0 = n.")
    assert ROCQ.parse_conjecture(completion, "c") == "Theorem c (n : nat) : n + 0 + 0 = n."


def test_sentence_end_skips_comments_and_strings():
    assert rocq_sentence_end('x (* a. b *) "c. d" y. z') == len('x (* a. b *) "c. d" y.')
    assert rocq_sentence_end("Nat.add_0_r n") is None


def test_sentence_end_lexes_strings_inside_comments_like_coq():
    # Inside a comment "*)" in a string does not close it; Coq lexes it the same way.
    assert rocq_sentence_end('(* "*)" . *) x. y.') == len('(* "*)" . *) x.')


def test_rocq_sentences_split_like_coqtop():
    text = 'intros.\n{ lia. }\n- (* a. *) simpl. idtac "b. c".\n-- auto.\n}'
    spans, unread = rocq_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "intros.",
        "{",
        "lia.",
        "}",
        "-",
        "simpl.",
        'idtac "b. c".',
        "--",
        "auto.",
        "}",
    ]
    assert unread == len(text)
    assert rocq_sentences("intros. lia")[1] == len("intros. ")
    assert rocq_sentences("intros. (* open")[1] == len("intros. ")


def test_rocq_sentences_follow_the_proof_splitter():
    """Headers and library files are split by the rules proofs are (``...`` ends a sentence,
    ``2: {`` is one, ``.(`` and ``x.y`` do not end one), leniently: nothing is refused."""
    text = "auto...\nQed.\n2: { exact p.(fst). }\nall: lia.\nCheck Nat.add.(* c *)x. y..z. w"
    spans, unread = rocq_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "auto...",
        "Qed.",
        "2: {",
        "exact p.(fst).",
        "}",
        "all: lia.",
        "Check Nat.add.(* c *)x.",
        "y..z.",
    ]
    assert unread == text.index("w")
    for proof in ["exact p.(fst).", "lia...", "simpl. auto."]:
        by_proof = [proof[s.start : s.end] for s in proof_sentences(proof)]
        assert by_proof == [proof[a:b] for a, b in rocq_sentences(proof)[0]]


def test_unknown_language():
    with pytest.raises(ValueError, match="no prompt format for 'coq'"):
        language("coq")


def test_identifiers_skip_comments_and_strings():
    rocq = 'intros n. (* Nat.mul_comm. *) idtac "plus_n_O". rewrite <- (Nat.add_comm n), le_n_S\'.'
    assert ROCQ.identifiers(rocq) == ("intros", "n", "idtac", "rewrite", "Nat.add_comm", "le_n_S'")
    lean = '  -- uses Nat.foo\n  /- Nat.bar /- nested -/ -/ simp [Nat.add_comm, mul_le_mul_left\']\n  exact "s"'
    assert LEAN.identifiers(lean) == ("simp", "Nat.add_comm", "mul_le_mul_left'", "exact")


@pytest.mark.parametrize("keyword", THEOREM_KEYWORDS)
def test_rocq_deduplication_strips_every_theorem_keyword(keyword):
    """Statements differing only in keyword and name are one statement, ``Example`` included:
    the keywords are the ones the verifier accepts."""
    statement = f"{keyword} any_name (n : nat) : n + 0 = n."
    assert ROCQ.statement_body(statement) == "(n : nat) : n + 0 = n."
    assert parse_statement(statement) == ParsedStatement("any_name", "forall (n : nat), n + 0 = n")
