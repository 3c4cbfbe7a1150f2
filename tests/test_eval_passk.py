"""pass@k estimators against exact enumeration and hand-checked cases."""

from __future__ import annotations

import itertools
import math

import pytest

from stp.eval import block_pass_at_k, pass_at_k, unbiased_pass_at_k
from stp.eval.passk import estimate_all
from stp.eval.reference import QUOTED, quoted_for


def _enumerated(n: int, c: int, k: int) -> float:
    """Share of all size-k subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_enumeration_over_all_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_enumerated(n, c, k), abs=1e-12)


def test_pass_at_k_closed_forms_and_large_n():
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # one correct sample among n: a size-k subset holds it with probability k/n, at any scale
    assert pass_at_k(25_600, 1, 3_200) == pytest.approx(3_200 / 25_600, rel=1e-9)
    # matches exact big-integer binomials where those are still computable
    exact = 1 - math.comb(3_200 - 40, 128) / math.comb(3_200, 128)
    assert pass_at_k(3_200, 40, 128) == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_unbiased_mean_over_problems_and_only_where_every_problem_has_k_samples():
    outcomes = [[True, False, False, False], [False, False, False, False], [True] * 4]
    estimate = unbiased_pass_at_k(outcomes, 2)
    assert estimate is not None
    assert estimate.value == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert unbiased_pass_at_k([[True] * 4, [True] * 3], 4) is None  # second problem: n=3 < 4
    assert unbiased_pass_at_k([], 1) is None


def test_block_estimator_hand_checked():
    # 2 problems x 8 samples, k=2 -> 4 blocks: (s0,s1) (s2,s3) (s4,s5) (s6,s7)
    p1 = [False, True, False, False, True, True, False, False]  # solved in blocks 0, 2
    p2 = [False, False, False, False, False, False, False, True]  # solved in block 3
    estimate = block_pass_at_k([p1, p2], 2)
    assert estimate is not None
    rates = [0.5, 0.0, 0.5, 0.5]  # per block: share of the 2 problems solved
    assert estimate.blocks == 4
    assert estimate.value == pytest.approx(0.375)
    std = math.sqrt(sum((r - 0.375) ** 2 for r in rates) / 3)  # sample std, ddof=1
    assert estimate.std == pytest.approx(std)
    assert estimate.format() == f"37.5% ± {100 * std:.1f}% (4 blocks)"


def test_block_estimator_std_needs_four_blocks_and_drops_leftovers():
    # 7 samples, k=2: 3 blocks; the 7th sample (correct) belongs to no block
    outcomes = [[True, False, False, False, False, False, True]]
    estimate = block_pass_at_k(outcomes, 2)
    assert estimate is not None
    assert (estimate.blocks, estimate.value, estimate.std) == (3, pytest.approx(1 / 3), None)
    assert estimate.format() == "33.3% (3 blocks)"
    # blocks are limited by the problem with the fewest samples
    short = block_pass_at_k([[False] * 8, [True] * 4], 2)
    assert short is not None and short.blocks == 2 and short.value == pytest.approx(0.5)
    assert block_pass_at_k([[True] * 3], 4) is None


def test_estimate_all_labels_each_figure_and_skips_undefined_k():
    estimates = estimate_all([[True, False, True, False]] * 2, [8, 1, 2])
    assert [(e.k, e.estimator) for e in estimates] == [
        (1, "unbiased"),
        (1, "block"),
        (2, "unbiased"),
        (2, "block"),
    ]
    assert estimates[0].label.startswith("unbiased")
    assert estimates[1].label.startswith("block")
    # block estimator at k=1 is the plain mean over blocks, equal to the unbiased value
    assert estimates[1].value == pytest.approx(estimates[0].value)


def test_quoted_figures_carry_sources_and_match_the_stp_paper():
    stp_minif2f = {
        r.k: r for r in quoted_for("minif2f", "test", "lean") if r.model.startswith("STP")
    }
    assert stp_minif2f[128].value == pytest.approx(0.612)
    assert stp_minif2f[3200].value == pytest.approx(0.650)
    assert stp_minif2f[25600].value == pytest.approx(0.676)
    putnam = [r for r in quoted_for("putnambench", "test", "lean") if r.model.startswith("STP")]
    assert [(r.k, r.format()) for r in putnam] == [(3200, "8/644")]
    assert all(r.source for r in QUOTED)
    assert quoted_for("minif2f", "valid", "rocq") == []  # nothing published for Rocq here
