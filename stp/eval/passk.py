"""pass@k estimators. Every figure says which one produced it.

- **unbiased** (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): with
  ``n`` samples of which ``c`` are correct, the probability that a random size-``k`` subset
  holds a correct one, ``1 - C(n-c, k) / C(n, k)``, averaged over problems. It needs
  ``n >= k`` for every problem; where some problem has fewer samples it is not reported.
- **block** (STP, Dong & Ma 2025): cut each problem's samples, in sampling order, into
  disjoint blocks of ``k``; the share of problems solved inside block ``b`` is one pass@k
  measurement; report the mean and the standard deviation over the blocks. The standard
  deviation is given only with at least ``MIN_BLOCKS_FOR_STD`` blocks (fewer say nothing).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Estimator = Literal["unbiased", "block"]

ESTIMATOR_LABELS: dict[str, str] = {
    "unbiased": "unbiased (Chen et al. 2021)",
    "block": "block mean ± std (STP)",
}

MIN_BLOCKS_FOR_STD = 4


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem: ``1 - C(n-c, k) / C(n, k)``.

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` (the product form of the binomial
    ratio), so n = 25,600 costs a loop of ``c`` floats, never a huge binomial.
    """
    if not (n >= 0 and 0 <= c <= n):
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:  # every size-k subset holds a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@dataclass(frozen=True, slots=True)
class PassAtK:
    """One benchmark-level pass@k figure; ``value`` and ``std`` are fractions in [0, 1]."""

    estimator: Estimator
    k: int
    value: float
    std: float | None = None  # block estimator with at least MIN_BLOCKS_FOR_STD blocks
    blocks: int | None = None  # block estimator only

    @property
    def label(self) -> str:
        return ESTIMATOR_LABELS[self.estimator]

    def format(self) -> str:
        """``"61.2%"``, or ``"61.2% ± 0.5% (8 blocks)"`` for the block estimator."""
        text = f"{100 * self.value:.1f}%"
        if self.estimator == "block":
            if self.std is not None:
                text += f" ± {100 * self.std:.1f}%"
            text += f" ({self.blocks} block{'s' if self.blocks != 1 else ''})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "estimator": self.estimator,
            "label": self.label,
            "k": self.k,
            "value": self.value,
            "std": self.std,
            "blocks": self.blocks,
        }


def unbiased_pass_at_k(outcomes: Sequence[Sequence[bool]], k: int) -> PassAtK | None:
    """Mean unbiased pass@k over problems (one outcome list per problem, any order within);
    None when some problem has fewer than ``k`` samples, or there are no problems."""
    if not outcomes or any(len(o) < k for o in outcomes):
        return None
    value = statistics.fmean(pass_at_k(len(o), sum(o), k) for o in outcomes)
    return PassAtK("unbiased", k, value)


def block_pass_at_k(outcomes: Sequence[Sequence[bool]], k: int) -> PassAtK | None:
    """STP's block estimator over problems (one outcome list per problem, in sampling order).

    Block ``b`` holds samples ``b*k .. b*k+k-1`` of every problem; the number of blocks is
    the same for every problem (the fewest any problem fills); leftover samples are unused.
    None when some problem has fewer than ``k`` samples, or there are no problems.
    """
    if k < 1:
        raise ValueError(f"block_pass_at_k: need k >= 1, got {k}")
    if not outcomes:
        return None
    blocks = min(len(o) for o in outcomes) // k
    if blocks == 0:
        return None
    rates = [statistics.fmean(any(o[b * k : (b + 1) * k]) for o in outcomes) for b in range(blocks)]
    # Sample standard deviation: the spread one would see between independent runs of k.
    std = statistics.stdev(rates) if blocks >= MIN_BLOCKS_FOR_STD else None
    return PassAtK("block", k, statistics.fmean(rates), std=std, blocks=blocks)


def estimate_all(outcomes: Sequence[Sequence[bool]], ks: Sequence[int]) -> list[PassAtK]:
    """Both estimators for every ``k`` where they are defined, unbiased first per ``k``."""
    estimates = []
    for k in sorted(set(ks)):
        for estimate in (unbiased_pass_at_k(outcomes, k), block_pass_at_k(outcomes, k)):
            if estimate is not None:
                estimates.append(estimate)
    return estimates
