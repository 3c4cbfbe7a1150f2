"""The stdlib parser on tricky snippets, splits, the verdict cache; extraction with real coqtop."""

import shutil
from collections import Counter
from pathlib import Path

import pytest

from stp.data.corpus import split_of
from stp.data.rocq_corpus import (
    CACHE_FILE,
    DEFAULT_MODULES,
    VerdictCache,
    logical_path,
    parse_file,
    stdlib_files,
    stdlib_theories,
)
from stp.verify.types import Verdict, VerifyJob, VerifyResult

TRICKY = Path(__file__).parent / "data" / "Tricky.v"


@pytest.fixture
def tricky(tmp_path):
    """tests/data/Tricky.v as the stdlib file ``Coq.Demo.Tricky``."""
    theories = tmp_path / "theories"
    (theories / "Demo").mkdir(parents=True)
    shutil.copy(TRICKY, theories / "Demo" / "Tricky.v")
    return {d.name: d for d in parse_file(theories, theories / "Demo" / "Tricky.v")}


def test_parser_reads_through_comments_and_strings(tricky):
    plus_zero = tricky["plus_zero"]
    assert plus_zero.skip is None and plus_zero.full_name == "Coq.Demo.Tricky.plus_zero"
    assert tricky["after_term"].skip is None and tricky["after_term"].proof == "reflexivity."
    assert plus_zero.formal_statement() == "Theorem stp_Demo_Tricky_plus_zero n : n + 0 = n."
    # Comments dropped, bullets and line structure kept.
    assert plus_zero.proof == "induction n; simpl.\n- reflexivity.\n- rewrite IHn. reflexivity."
    assert plus_zero.header() == (
        "Require Import PeanoNat.\nRequire Import Coq.Demo.Tricky.\n"
        "Open Scope nat_scope.\nImplicit Types n m : nat.\n\n"
    )
    assert tricky["same_line_proof"].proof == "destruct b.\n- reflexivity.\n- reflexivity."
    with_string = tricky["with_string"]
    assert with_string.type == '"a. b"%string = "a. b"%string -> True'
    assert with_string.proof == "intros _. exact I."


def test_parser_reads_every_theorem_keyword_the_verifier_accepts(tricky):
    proved = tricky["proved_example"]
    assert proved.skip is None and proved.proof == "apply Nat.mul_1_r."
    assert (
        proved.formal_statement() == "Theorem stp_Demo_Tricky_proved_example (n : nat) : n * 1 = n."
    )
    # An Example with a body is a definition: no proof to read, and the next theorem is kept.
    assert "defined_example" not in tricky


def test_parser_skips_what_cannot_stand_alone(tricky):
    assert {name: d.skip for name, d in tricky.items() if d.skip} == {
        "transparent_one": "defined",
        "admitted_one": "admitted",
        "uses_let": "section let",
        "nested_vernacular": "nested vernacular",
        "in_sig": "functor or module type",
        "by_term": "proof term",
        "dotted": "proof with",
    }
    # A proof ending in ``...`` ends where Coq says: the next theorem is read, not swallowed.
    assert tricky["after_dots"].skip is None and tricky["after_dots"].proof == "reflexivity."


def test_section_variables_become_binders_and_local_tactics_are_replayed(tricky):
    f_twice = tricky["f_twice"]
    # g is not used, f_id is used by name, A is needed by f's type.
    assert f_twice.section_binders == ("(A : Type)", "(f : A -> A)", "(f_id : forall x, f x = x)")
    assert f_twice.formal_statement() == (
        "Theorem stp_Demo_Tricky_f_twice (A : Type) (f : A -> A) (f_id : forall x, f x = x) x"
        " : f (f x) = x."
    )
    assert f_twice.closed_type() == (
        "forall (A : Type) (f : A -> A) (f_id : forall x, f x = x) x, f (f x) = x"
    )
    assert "Ltac finish := reflexivity." in f_twice.header()
    assert "Implicit Type y" not in f_twice.header()  # it names a section variable
    # A section definition takes the section variables it uses as arguments outside it.
    assert tricky["uses_local"].formal_statement() == (
        "Theorem stp_Demo_Tricky_uses_local (A : Type) (f : A -> A) (f_id : forall x, f x = x) x"
        " : (@twice A f) x = x."
    )
    assert "Ltac" not in tricky["plus_zero"].header()  # defined after it


def test_module_members_import_their_module(tricky):
    inside = tricky["inside"]
    assert inside.local_name == "Inner.inside" and inside.skip is None
    assert "Import Coq.Demo.Tricky.Inner.\n" in inside.header()
    assert inside.fresh_name == "stp_Demo_Tricky_Inner_inside"


@pytest.mark.rocq
def test_real_stdlib_parses():
    theories = stdlib_theories()
    assert logical_path(theories, theories / "Arith" / "PeanoNat.v") == "Coq.Arith.PeanoNat"
    files = stdlib_files(theories, ["Arith"])
    found = [d for f in files for d in parse_file(theories, f)]
    by_name = {d.full_name: d for d in found}
    add_0_l = by_name["Coq.Arith.PeanoNat.Nat.add_0_l"]
    assert add_0_l.skip is None and "Import Coq.Arith.PeanoNat.Nat." in add_0_l.header()
    assert add_0_l.formal_statement() == "Theorem stp_Arith_PeanoNat_Nat_add_0_l n : 0 + n = n."
    assert len(found) > 150 and sum(d.skip is None for d in found) > 100
    assert stdlib_files(theories, DEFAULT_MODULES)[0].parent.name == "Init"


def test_splits_are_deterministic_and_proportional():
    names = [f"Coq.Demo.T.lemma_{i}" for i in range(4000)]
    first = [split_of(n, 0.1, 0.2) for n in names]
    assert first == [split_of(n, 0.1, 0.2) for n in names]
    counts = Counter(first)
    assert abs(counts["heldout"] / 4000 - 0.1) < 0.02
    assert abs(counts["selfplay"] / 4000 - 0.2) < 0.03
    assert split_of(names[0], 0.0, 0.0) == "sft"


def test_verdict_cache_survives_a_torn_line(tmp_path):
    path = tmp_path / CACHE_FILE
    job = VerifyJob("a", "Require Import Arith.\n", "Theorem a : True.", "exact I.")
    other = VerifyJob("b", "Require Import Arith.\n", "Theorem b : False.", "auto.")
    cache = VerdictCache(path)
    cache.add(
        [(job, VerifyResult("a", Verdict.PROVED)), (other, VerifyResult("b", Verdict.FAILED))]
    )
    with path.open("a") as handle:
        handle.write('{"key": "abc", "verd')  # a kill mid-write
    reread = VerdictCache(path)
    assert reread.get(job) == "proved" and reread.get(other) == "failed"
    assert reread.get(VerifyJob("a", "", "Theorem a : True.", "exact I.")) is None
