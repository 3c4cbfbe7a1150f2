"""Evaluation: pass@k (unbiased and STP's block estimator) on benchmarks, with reports."""

from stp.eval.passk import PassAtK, block_pass_at_k, pass_at_k, unbiased_pass_at_k
from stp.eval.reference import QUOTED, QuotedResult, quoted_for

__all__ = [
    "QUOTED",
    "PassAtK",
    "QuotedResult",
    "block_pass_at_k",
    "pass_at_k",
    "quoted_for",
    "unbiased_pass_at_k",
]
