"""Selection math of a self-play round: windows, elegance, re-weighting, prover weights,
replay, dedup, and the final re-training's proof cap."""

import math

import numpy as np
import pytest

from stp.languages.lean import LEAN
from stp.languages.rocq import ROCQ
from stp.prove import VerifiedAttempt
from stp.runs import stage_seed
from stp.selfplay import selection
from stp.selfplay.final import shortest_proofs
from stp.selfplay.history import RunHistory, fold_stats, key_digest
from stp.selfplay.records import StatementStats


def rows(target, proved=(), failed=()):
    """Verified attempts: ``proved``/``failed`` are (proof, count) pairs."""
    out = [VerifiedAttempt(target, p, c, "proved", 0.0) for p, c in proved]
    out += [VerifiedAttempt(target, p, c, "failed", 0.0) for p, c in failed]
    return out


def outcome(target="t", proved=(), failed=()):
    (result,) = selection.outcomes(rows(target, proved, failed))
    return result


def test_outcomes_count_multiplicity_and_keep_only_correct_proofs():
    stream = rows("a", [("auto.", 3)], [("lia.", 5)]) + rows("b", failed=[("x.", 8)])
    a, b = selection.outcomes(stream)
    assert (a.target, a.attempts, a.correct, a.pass_rate) == ("a", 8, 3, 3 / 8)
    assert a.proofs == [("auto.", 3)]
    assert (b.attempts, b.correct, b.pass_rate, b.shortest_proof()) == (8, 0, 0.0, None)


def test_outcomes_reject_rows_not_grouped_by_target():
    stream = rows("a", failed=[("x", 1)]) + rows("b", failed=[("x", 1)]) + rows("a", [("y", 1)])
    with pytest.raises(selection.UngroupedRowsError, match="'a'"):
        list(selection.outcomes(stream))


@pytest.mark.parametrize(
    ("rate", "inside"),
    [(0.0, False), (1 / 32, True), (0.25, True), (0.25 + 1e-9, False), (1.0, False)],
)
def test_window_is_open_below_closed_above(rate, inside):
    assert selection.in_window(rate, 0.0, 0.25) is inside


def test_conjecture_candidate_needs_window_and_a_proof_using_the_lemma():
    o = outcome(proved=[("rewrite foo. auto.", 1), ("lia.", 1)], failed=[("x", 6)])  # 2/8
    statement = "Theorem c : 1 = 1."  # 18 characters
    uses_foo = lambda proof: "foo" in proof  # noqa: E731
    candidate = selection.conjecture_candidate(o, statement, uses_foo, 0.0, 0.25)
    assert candidate is not None
    # elegance counts only the proofs that use the lemma: "rewrite foo. auto." (18 chars)
    assert candidate.elegance == pytest.approx(18 / 18)
    assert selection.conjecture_candidate(o, statement, lambda p: False, 0.0, 0.25) is None
    easy = outcome(proved=[("rewrite foo.", 3)], failed=[("x", 5)])  # 3/8 > 1/4
    assert selection.conjecture_candidate(easy, statement, uses_foo, 0.0, 0.25) is None
    unproved = outcome(failed=[("x", 8)])
    assert selection.conjecture_candidate(unproved, statement, lambda p: True, 0.0, 0.25) is None


def test_elegance_drops_the_floor_of_the_fraction_with_the_largest_ratio():
    cands = [
        selection.ConjectureCandidate(f"c{i}", 0.1, ratio)
        for i, ratio in enumerate([3.0, 1.0, 9.0, 2.0, 5.0, 4.0, 0.5, 8.0, 7.0, 6.0])
    ]
    kept = selection.drop_least_elegant(cands, 0.2)
    assert sorted(c.elegance for c in kept) == [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert [c.target for c in kept] == sorted(c.target for c in kept)  # stable output order
    assert len(selection.drop_least_elegant(cands[:4], 0.2)) == 4  # floor(0.8) = 0 dropped
    assert selection.drop_least_elegant(cands, 0.0) == sorted(cands, key=lambda c: c.target)


def unit(*vectors):
    array = np.array(vectors, dtype=float)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_reweighting_follows_the_unproved_statements_and_is_capped():
    conjectures = unit([1, 0], [0, 1], [-1, 0])
    # five unproved statements near conjecture 0, one near conjecture 1, none near 2
    unproved = unit([1, 0.1], [1, -0.1], [1, 0.2], [1, 0], [1, 0.05], [0.1, 1])
    weights = selection.nearest_neighbour_weights(conjectures, unproved, cap=2.0)
    # mean-1 scaling: 3 conjectures * votes / 6 statements = [2.5, 0.5, 0], then capped at 2
    assert weights.tolist() == pytest.approx([2.0, 0.5, 0.0])
    uncapped = selection.nearest_neighbour_weights(conjectures, unproved, cap=100.0)
    assert uncapped.tolist() == pytest.approx([2.5, 0.5, 0.0])
    assert uncapped.mean() == pytest.approx(1.0)
    no_unproved = np.zeros((0, 2))
    assert selection.nearest_neighbour_weights(conjectures, no_unproved, 2.0).tolist() == [1, 1, 1]


def test_prover_weights_share_one_unit_per_statement_and_favour_short_proofs():
    o = outcome(proved=[("a" * 10, 3), ("b" * 1000, 1)], failed=[("x", 4)])  # pass rate 1/2
    weights = dict(selection.prover_proof_weights(o, length_penalty=0.001, pass_rate_max=0.5))
    assert weights["a" * 10] == pytest.approx(3 * math.exp(-0.01) / 4)
    assert weights["b" * 1000] == pytest.approx(math.exp(-1.0) / 4)
    no_penalty = selection.prover_proof_weights(o, length_penalty=0.0, pass_rate_max=0.5)
    assert sum(w for _, w in no_penalty) == pytest.approx(1.0)
    too_easy = outcome(proved=[("a", 5)], failed=[("x", 3)])  # 5/8 > 1/2
    assert selection.prover_proof_weights(too_easy, 0.001, 0.5) == []
    assert selection.prover_proof_weights(outcome(failed=[("x", 8)]), 0.001, 0.5) == []


def test_replay_window_is_the_last_n_rounds_including_this_one():
    assert list(selection.replay_window(0, 3)) == [0]
    assert list(selection.replay_window(2, 3)) == [0, 1, 2]
    assert list(selection.replay_window(7, 3)) == [5, 6, 7]
    assert list(selection.replay_window(7, 1)) == [7]


def test_histogram_bins():
    counts = selection.histogram([0.0, 0.0, 0.1, 0.25, 0.3, 0.5, 0.6, 1.0])
    assert counts == {"0": 2, "(0,.25]": 2, "(.25,.5]": 2, "(.5,.75]": 1, "(.75,1]": 1}


def test_dedup_key_ignores_names_and_white_space_but_not_headers():
    a = ROCQ.statement_body("Theorem foo (n : nat) :\n  n + 0 = n.")
    b = ROCQ.statement_body("Lemma   bar (n:nat): n+0=n.")
    assert selection.whitespace_key("", a) == selection.whitespace_key("", b)
    assert key_digest(selection.whitespace_key("", a)) == key_digest(
        selection.whitespace_key(" ", b)
    )
    other_header = selection.whitespace_key("Require Import Arith.", a)
    assert other_header != selection.whitespace_key("", a)
    assert ROCQ.statement_body("Theorem x : 0 = 1.") != ROCQ.statement_body("Theorem x : 1 = 0.")
    lean = LEAN.statement_body("theorem t1 (x : ℕ) : x = x := by")
    assert lean == LEAN.statement_body("theorem  other (x : ℕ) : x = x := by")


def stats(target, kind, pass_rate, proof):
    return StatementStats(target, kind, 4, round(4 * pass_rate), pass_rate, proof)


def test_history_keeps_best_rate_and_shortest_proof_of_dataset_statements_only():
    history = RunHistory()
    fold_stats(
        history,
        [
            stats("s", "dataset", 0.5, "lia."),
            stats("c", "conjecture", 0.1, "auto."),
            stats("u", "dataset", 0.0, None),
        ],
    )
    later = history.with_round([stats("s", "dataset", 0.25, "ok.")])
    assert set(later.statements) == {"s", "u"}
    assert later.statements["s"].best_pass_rate == 0.5
    assert later.statements["s"].proof == "ok."
    assert later.proved_ids() == {"s"}
    assert history.statements["s"].proof == "lia."  # the earlier history is left as it was


def test_stage_seeds_differ_by_round_and_stage_and_are_stable():
    seeds = {stage_seed(0, r, s) for r in range(3) for s in ("a", "b")}
    assert len(seeds) == 6
    assert stage_seed(0, 1, "generate") == stage_seed(0, 1, "generate")
    assert stage_seed(1, 1, "generate") != stage_seed(0, 1, "generate")
    assert stage_seed(0, 1, "generate") == 514994033  # what earlier versions drew


def test_final_retrain_keeps_the_shortest_distinct_proofs_per_statement():
    stream = [VerifiedAttempt("t", "x" * n, 1, "proved", 0.0) for n in (9, 3, 7, 3, 1, 8, 2, 5)]
    stream += [VerifiedAttempt("t", "y", 1, "failed", 0.0)]
    stream += [VerifiedAttempt("u", "b", 1, "proved", 0.0)]
    proofs = shortest_proofs(iter(stream), limit=3)
    assert proofs == {"t": ["x", "xx", "xxx"], "u": ["b"]}


def test_every_rocq_theorem_keyword_the_verifier_accepts_is_stripped_for_dedup():
    """A conjecture stated with `Example` is the same statement as one stated with `Theorem`."""
    body = ROCQ.statement_body("Theorem a (n : nat) : n + 0 = n.")
    for keyword in ("Lemma", "Fact", "Remark", "Corollary", "Proposition", "Property", "Example"):
        assert ROCQ.statement_body(f"{keyword} b (n : nat) : n + 0 = n.") == body
