"""Selection math of a self-play round (STP's step 5), streaming over attempts.

Verification leaves one ``VerifiedAttempt`` per distinct (target, proof) with its
multiplicity, grouped by target. ``outcomes`` folds those records into one ``Outcome`` per target while holding only the
current target's correct proofs, so selection runs over hundreds of millions of attempts in
constant memory (``scripts/bench_selection.py`` measures it).

- conjecturer examples: conjectures whose pass rate is in (window_low, window_high] and one of
  whose correct proofs uses the seed's lemma; the least elegant share is dropped (elegance =
  min over correct proofs of len(proof)/len(statement), larger is less elegant); the rest are
  re-weighted toward the still-unproved statements by nearest-neighbour matching of embeddings;
- prover examples: each distinct correct proof of a target whose pass rate is in
  (0, prover_pass_rate_max], weighted ``count * exp(-length_penalty * len(proof)) / correct``
  so that every target contributes at most one unit of weight, shorter proofs more.

Lengths are in characters: the same for every tokenizer, so weights do not change with the model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from stp.prove import VerifiedAttempt

PROVED = "proved"

# Pass-rate histogram bins: exactly 0, then (0, 1/4], (1/4, 1/2], (1/2, 3/4], (3/4, 1].
HISTOGRAM_EDGES: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
HISTOGRAM_LABELS: tuple[str, ...] = ("0", "(0,.25]", "(.25,.5]", "(.5,.75]", "(.75,1]")


@dataclass(slots=True)
class Outcome:
    """All attempts at one target: how many, how many proved, the distinct correct proofs."""

    target: str
    attempts: int
    correct: int
    proofs: list[tuple[str, int]]  # distinct correct proofs with their multiplicity

    @property
    def pass_rate(self) -> float:
        return self.correct / self.attempts if self.attempts else 0.0

    def shortest_proof(self) -> str | None:
        return min((p for p, _ in self.proofs), key=lambda p: (len(p), p), default=None)


class UngroupedRowsError(ValueError):
    """Verification rows of one target were not contiguous (the file is not in target order)."""


def outcomes(rows: Iterable[VerifiedAttempt]) -> Iterator[Outcome]:
    """One ``Outcome`` per target from verified attempts grouped by target. Memory: the
    current target's correct proofs and the set of finished ids."""
    current: Outcome | None = None
    finished: set[str] = set()
    for row in rows:
        target = row.target
        if current is None or target != current.target:
            if current is not None:
                finished.add(current.target)
                yield current
            if target in finished:
                raise UngroupedRowsError(f"rows of target {target!r} are not contiguous")
            current = Outcome(target, 0, 0, [])
        current.attempts += row.count
        if row.verdict == PROVED:
            current.correct += row.count
            current.proofs.append((row.proof, row.count))
    if current is not None:
        yield current


def histogram(rates: Iterable[float]) -> dict[str, int]:
    """Counts of pass rates per bin (``HISTOGRAM_LABELS``)."""
    counts = dict.fromkeys(HISTOGRAM_LABELS, 0)
    for rate in rates:
        if rate <= 0:
            counts[HISTOGRAM_LABELS[0]] += 1
            continue
        for edge, label in zip(HISTOGRAM_EDGES, HISTOGRAM_LABELS[1:], strict=True):
            if rate <= edge:
                counts[label] += 1
                break
    return counts


# ------------------------------------------------------------------ conjecturer side


def in_window(pass_rate: float, low: float, high: float) -> bool:
    """Barely provable: pass rate in (low, high]."""
    return low < pass_rate <= high


@dataclass(frozen=True, slots=True)
class ConjectureCandidate:
    target: str
    pass_rate: float
    elegance: float  # min len(proof)/len(statement); larger is less elegant


def conjecture_candidate(
    outcome: Outcome,
    statement: str,
    uses_lemma: Callable[[str], bool],
    low: float,
    high: float,
) -> ConjectureCandidate | None:
    """The conjecture as a candidate conjecturer example, or None when its pass rate is outside
    the window or none of its correct proofs uses the seed's lemma (``uses_lemma(proof)``)."""
    if not in_window(outcome.pass_rate, low, high):
        return None
    using = [p for p, _ in outcome.proofs if uses_lemma(p)]
    if not using:
        return None
    elegance = min(len(p) for p in using) / max(len(statement), 1)
    return ConjectureCandidate(outcome.target, outcome.pass_rate, elegance)


def drop_least_elegant(
    candidates: Sequence[ConjectureCandidate], fraction: float
) -> list[ConjectureCandidate]:
    """Drop the ``floor(fraction * n)`` candidates with the largest proof/statement ratio
    (ties broken by id, so the result does not depend on input order)."""
    ranked = sorted(candidates, key=lambda c: (c.elegance, c.target))
    keep = len(ranked) - math.floor(fraction * len(ranked) + 1e-9)
    return sorted(ranked[:keep], key=lambda c: c.target)


def nearest_neighbour_weights(
    conjectures: np.ndarray, unproved: np.ndarray, cap: float
) -> np.ndarray:
    """Weights that move the selected conjectures toward the unproved statements' distribution.

    Each unproved statement votes for its nearest conjecture (cosine similarity; both arrays
    hold L2-normalised rows). A conjecture's weight is its votes scaled so the mean weight is 1
    (``n_conjectures * votes / n_unproved``), capped at ``cap``: a conjecture no unproved
    statement is near gets weight 0. With no unproved statements every weight is 1.
    """
    n = conjectures.shape[0]
    if n == 0:
        return np.zeros(0)
    if unproved.shape[0] == 0:
        return np.ones(n)
    nearest = np.empty(unproved.shape[0], dtype=np.int64)
    step = 4096  # bounded memory: a (step, n) similarity block at a time
    for start in range(0, unproved.shape[0], step):
        block = unproved[start : start + step] @ conjectures.T
        nearest[start : start + step] = block.argmax(axis=1)
    votes = np.bincount(nearest, minlength=n).astype(np.float64)
    return np.minimum(votes * n / unproved.shape[0], cap)


# ----------------------------------------------------------------------- prover side


def prover_proof_weights(
    outcome: Outcome, length_penalty: float, pass_rate_max: float
) -> list[tuple[str, float]]:
    """(proof, weight) for each distinct correct proof of a target whose pass rate is in
    (0, pass_rate_max]: ``count * exp(-length_penalty * len(proof)) / correct``."""
    if outcome.correct == 0 or outcome.pass_rate > pass_rate_max:
        return []
    return [
        (proof, count * math.exp(-length_penalty * len(proof)) / outcome.correct)
        for proof, count in sorted(outcome.proofs)
    ]


def replay_window(round_index: int, replay_rounds: int) -> range:
    """Rounds whose prover examples enter round ``round_index``'s training set."""
    return range(max(0, round_index - replay_rounds + 1), round_index + 1)


# --------------------------------------------------------------------------- dedup

_SPACE = re.compile(r"\s+")


def whitespace_key(header: str, body: str) -> tuple[str, str]:
    """Dedup key of a statement body (its name already removed) under a header: two
    statements that differ only in white space are the same statement."""
    return (_SPACE.sub("", header), _SPACE.sub("", body))
