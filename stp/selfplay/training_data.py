"""The select stage: from verified attempts to the round's training set.

1. ``score``: one pass over the verified attempts (grouped by target) gives each target's
   stats, the prover examples (statements with pass rate in (0, 1/2], weight
   exp(-0.001·len)/#correct) and the barely provable conjectures whose proof uses the seed's
   lemma (``stp.selfplay.selection`` holds the math);
2. ``conjecturer_examples``: the least elegant 20% of those conjectures dropped, the rest
   re-weighted toward the still-unproved statements (nearest neighbour on mean-pooled
   embeddings, capped);
3. ``gate_passed_examples``: with ``selection.gate_passed_weight`` > 0, every other conjecture
   that passed the gate and got proof attempts (with a pass rate of at most
   ``selection.gate_passed_max_pass_rate`` when set) as a conjecturer example of that weight
   (not STP's rule: it teaches a small model the form of a well-typed, non-trivial statement);
   the select stage makes none in a round whose samples are at least
   ``selection.gate_passed_until_well_typed`` well-typed;
4. ``training_set``: conjecturer examples plus the prover examples of the last
   ``selection.replay_rounds`` rounds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stp.artifacts import read_jsonl
from stp.config import SelectionConfig
from stp.languages.base import FormalLanguage
from stp.prove import VerifiedAttempt
from stp.selfplay import selection
from stp.selfplay.conjecturing import uses_lemma
from stp.selfplay.records import (
    CONJECTURE,
    Conjecture,
    StatementStats,
    Target,
    TrainingExample,
    iter_records,
)

if TYPE_CHECKING:
    import numpy as np

    from stp.data.corpus import Lemma


@dataclass(slots=True)
class Scores:
    stats: list[StatementStats] = field(default_factory=list)
    prover_examples: list[TrainingExample] = field(default_factory=list)
    candidates: list[selection.ConjectureCandidate] = field(default_factory=list)


def score(
    verified: Iterable[VerifiedAttempt],
    targets: Mapping[str, Target],
    conjectures: Mapping[str, Conjecture],
    lemma_index: Mapping[str, Lemma] | None,
    settings: SelectionConfig,
    lang: FormalLanguage,
) -> Scores:
    scores = Scores()
    for outcome in selection.outcomes(verified):
        target = targets[outcome.target]
        scores.stats.append(
            StatementStats(
                outcome.target,
                target.kind,
                outcome.attempts,
                outcome.correct,
                outcome.pass_rate,
                outcome.shortest_proof(),
            )
        )
        if target.kind == CONJECTURE:
            lemma = conjectures[outcome.target].lemma
            candidate = selection.conjecture_candidate(
                outcome,
                target.formal_statement,
                functools.partial(uses_lemma, lemma, lemma_index, lang.name),
                settings.window_low,
                settings.window_high,
            )
            if candidate is not None:
                scores.candidates.append(candidate)
        prompt = target.prompt(lang)
        scores.prover_examples.extend(
            TrainingExample(prompt, lang.prover_completion(proof), weight, outcome.target)
            for proof, weight in selection.prover_proof_weights(
                outcome, settings.length_penalty, settings.prover_pass_rate_max
            )
        )
    return scores


def conjecturer_examples(
    candidates: Sequence[selection.ConjectureCandidate],
    conjectures: Mapping[str, Conjecture],
    unproved: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    settings: SelectionConfig,
    lang: FormalLanguage,
) -> list[TrainingExample]:
    """The kept conjectures as weighted conjecturer examples (weight 0 dropped);
    ``unproved`` are the formal statements still unproved, ``embed`` embeds texts."""
    import numpy as np

    kept = selection.drop_least_elegant(candidates, settings.elegance_drop_fraction)
    weights = np.ones(len(kept))
    if kept and settings.reweight_conjectures and unproved:
        texts = [conjectures[c.target].formal_statement for c in kept]
        embedded = embed(texts + list(unproved))
        weights = selection.nearest_neighbour_weights(
            embedded[: len(kept)], embedded[len(kept) :], settings.conjecture_weight_cap
        )
    return [
        _conjecturer_example(conjectures[candidate.target], float(weight), lang)
        for candidate, weight in zip(kept, weights, strict=True)
        if weight > 0
    ]


def gate_passed_examples(
    passed: Iterable[Conjecture], candidates: Collection[str], weight: float, lang: FormalLanguage
) -> list[TrainingExample]:
    """Conjecturer examples, each of weight ``weight``, of the ``passed`` conjectures (past the
    gate) that are not ``candidates`` (the ids of the barely provable ones, which STP's rule
    keeps or drops as least elegant)."""
    if weight <= 0:
        return []
    return [_conjecturer_example(c, weight, lang) for c in passed if c.id not in candidates]


def _conjecturer_example(
    conjecture: Conjecture, weight: float, lang: FormalLanguage
) -> TrainingExample:
    """The conjecturer's prompt (seed, proof, lemma) and ``conjecture``'s statement."""
    return TrainingExample(
        conjecture.conjecturer_prompt(lang),
        lang.conjecture_completion(conjecture.formal_statement),
        weight,
        conjecture.id,
    )


def training_set(
    conjecturer: Iterable[TrainingExample], prover_files: Iterable[Path]
) -> Iterator[TrainingExample]:
    """The conjecturer examples, then the prover examples of each replayed round, without
    their origin."""
    for example in conjecturer:
        yield example.unattributed()
    for path in prover_files:
        for example in iter_records(read_jsonl(path), TrainingExample):
            yield example.unattributed()


def embedder(model: str) -> Callable[[list[str]], Any]:
    def embed(texts: list[str]) -> Any:
        from stp.models.embed import mean_pooled_embeddings  # loads torch

        return mean_pooled_embeddings(model, texts)

    return embed
