import dataclasses
import json

import pytest

from stp.data import DataError, Statement, load_statements
from stp.data.corpus import (
    ConjectureExample,
    Lemma,
    ProvedTheorem,
    build_lemma_index,
    cites_target,
    conjecture_examples,
    corpus_text,
    lemmas_used,
    load_corpus,
    qualified_names,
    write_corpus,
)
from stp.languages.rocq import ROCQ

ADD_COMM = Lemma("Nat.add_comm", "Nat.add_comm : forall n m, n + m = m + n", "Coq.Arith.PeanoNat")
N_ADD_COMM = Lemma("N.add_comm", "N.add_comm : forall n m, (n + m = m + n)%N", "Coq.NArith.BinNat")
PLUS_N_O = Lemma("plus_n_O", "plus_n_O : forall n : nat, n = n + 0", "Coq.Init.Peano")
HEADER = "Require Import Coq.Arith.PeanoNat.\n\n"


def theorem(name: str, split: str, proof: str = "intros. apply Nat.add_comm.") -> ProvedTheorem:
    return ProvedTheorem(
        statement=Statement(
            name=name,
            prover="rocq",
            split=split,
            source="coq-stdlib",
            header=HEADER,
            formal_statement=f"Theorem {name} : forall n m : nat, n + m = m + n.",
            forbidden_names=(
                "add_comm_swap",
                "Nat.add_comm_swap",
                "Coq.Arith.PeanoNat.Nat.add_comm_swap",
            ),
        ),
        proof=proof,
        lemmas=(ADD_COMM,),
    )


def test_corpus_round_trip(tmp_path):
    theorems = [
        theorem("t_sft", "sft"),
        theorem("t_play", "selfplay"),
        theorem("t_eval", "heldout"),
    ]
    examples = [
        ConjectureExample(
            "rocq", HEADER, "Theorem s : 0 = 0.", "reflexivity.", ADD_COMM, "Theorem t : 1 = 1."
        ),
        ConjectureExample(
            "rocq", HEADER, "Theorem s : 0 = 0.", "reflexivity.", None, "Theorem t : 1 = 1."
        ),
    ]
    unproved = [dataclasses.replace(theorems[1].statement, name="open_problem")]
    write_corpus(tmp_path, theorems, [ADD_COMM, N_ADD_COMM, PLUS_N_O], examples, unproved)
    corpus = load_corpus(tmp_path)
    assert corpus.unproved == tuple(unproved)
    assert corpus.sft == (theorems[0],) and corpus.selfplay == (theorems[1],)
    assert corpus.heldout == (theorems[2],)
    assert corpus.conjecture_examples == tuple(examples)
    assert corpus.lemmas == (ADD_COMM, N_ADD_COMM, PLUS_N_O)
    assert corpus.lemma_index["Coq.Arith.PeanoNat.Nat.add_comm"] == ADD_COMM
    with pytest.raises(dataclasses.FrozenInstanceError):
        corpus.sft[0].proof = "x"  # type: ignore[misc]
    # The heldout split is also a benchmark file `stp eval --benchmark` reads.
    heldout = load_statements(tmp_path / "heldout.jsonl", "rocq")
    # ... with the names a proof may not cite, which the evaluation passes to the verifier
    assert heldout == (theorems[2].statement,)
    assert heldout[0].forbidden_names == theorems[2].forbidden_names
    (row,) = [json.loads(line) for line in (tmp_path / "heldout.jsonl").read_text().splitlines()]
    assert row["forbidden_names"] == list(theorems[2].forbidden_names)


def test_conjecture_example_training_pair():
    example = ConjectureExample(
        "rocq",
        HEADER,
        "Theorem s (n : nat) : n + 0 = n.",
        "apply Nat.add_0_r.",
        ADD_COMM,
        "Theorem t (n : nat) : 0 + n + 0 = n.",
    )
    assert example.prompt() == ROCQ.conjecturer_prompt(
        HEADER, "Theorem s (n : nat) : n + 0 = n.", "apply Nat.add_0_r.", ADD_COMM.statement
    )
    assert (
        ROCQ.parse_conjecture(example.completion(), "c") == "Theorem c (n : nat) : 0 + n + 0 = n."
    )
    trivial = dataclasses.replace(example, lemma=None)
    assert "Lemma that the new theorem" not in trivial.prompt()


def test_load_corpus_errors_name_the_fix(tmp_path):
    with pytest.raises(DataError, match="stp data extract-rocq"):
        load_corpus(tmp_path)
    write_corpus(tmp_path, [], [], [])
    (tmp_path / "theorems.jsonl").write_text('{"name": "x"}\n')
    with pytest.raises(DataError, match="record 1 is malformed"):
        load_corpus(tmp_path)
    with pytest.raises(DataError, match="split 'train'"):
        write_corpus(tmp_path, [theorem("x", "train")], [], [])


def test_lemma_resolution_by_any_qualified_name():
    index = build_lemma_index([N_ADD_COMM, ADD_COMM, PLUS_N_O])
    assert qualified_names("Coq.Arith.PeanoNat.Nat.add_comm")[:2] == ("add_comm", "Nat.add_comm")
    proof = (
        "intros n m. (* Nat.mul_comm would not help. *)\n"
        'idtac "plus_n_O". rewrite <- plus_n_O.\n'
        "rewrite PeanoNat.Nat.add_comm; apply (N.add_comm n). exact H."
    )
    assert lemmas_used(proof, index) == (PLUS_N_O, ADD_COMM, N_ADD_COMM)
    # A bare name two lemmas share goes to the first lemma given.
    assert lemmas_used("apply add_comm.", index) == (N_ADD_COMM,)
    assert lemmas_used("lia.", index) == ()


@pytest.mark.parametrize(
    ("proof", "cites"),
    [
        ("apply Nat.add_comm_swap.", True),
        ("exact (add_comm_swap n m).", True),
        ("rewrite Coq.Arith.PeanoNat.Nat.add_comm_swap. reflexivity.", True),
        ("intros. apply Nat.add_comm.", False),
        ("(* not Nat.add_comm_swap *) intros; lia.", False),
        ("apply Nat.add_comm_swap'.", False),  # a different name
    ],
)
def test_cites_target(proof, cites):
    assert cites_target(proof, theorem("t", "selfplay")) is cites


def test_conjecture_examples_pair_seeds_with_same_file_theorems_sharing_a_lemma():
    def with_lemmas(name, split, lemmas):
        return dataclasses.replace(theorem(name, split), lemmas=lemmas)

    a = with_lemmas("a", "sft", (PLUS_N_O, ADD_COMM))
    b = with_lemmas("b", "sft", ())
    c = with_lemmas("c", "sft", (ADD_COMM,))
    held = with_lemmas("h", "heldout", (PLUS_N_O,))
    other_file = with_lemmas("o", "sft", (PLUS_N_O,))
    examples = conjecture_examples(
        [("F", a), ("F", b), ("F", held), ("F", c), ("G", other_file)], targets_per_seed=1
    )
    pairs = [
        (e.seed_statement.split()[1], e.lemma, e.target_statement.split()[1]) for e in examples
    ]
    # a: PLUS_N_O is used by no other sft theorem of F (h is heldout, o is in G): ADD_COMM with c.
    assert pairs == [
        ("a", ADD_COMM, "c"),
        ("a", None, "b"),
        ("b", None, "c"),
        ("c", ADD_COMM, "a"),
    ]
    # Two targets per seed: a second lemma example where one exists, the next two theorems.
    more = conjecture_examples(
        [("F", a), ("F", b), ("F", held), ("F", c), ("F", with_lemmas("d", "sft", (PLUS_N_O,)))],
        targets_per_seed=2,
    )
    pairs = [(e.seed_statement.split()[1], e.lemma, e.target_statement.split()[1]) for e in more]
    assert pairs == [
        ("a", PLUS_N_O, "d"),
        ("a", ADD_COMM, "c"),
        ("a", None, "b"),
        ("a", None, "c"),
        ("b", None, "c"),
        ("b", None, "d"),
        ("c", ADD_COMM, "a"),
        ("c", None, "d"),
        ("d", PLUS_N_O, "a"),
    ]
    text = corpus_text([a, held, theorem("s", "selfplay")], [PLUS_N_O])
    assert "Theorem a" in text and "apply Nat.add_comm" in text and "Theorem h" not in text
    assert (
        "Theorem s" in text and text.count("apply Nat.add_comm") == 1 and PLUS_N_O.statement in text
    )
