"""The prover's half of a round: which statements get proof attempts, and how many.

Proof attempts go to every unproved dataset statement, every new conjecture, and proved
statements whose best pass rate is at most ``selection.resample_pass_rate_max``;
``expert_iteration`` and ``parallel_sampling`` sample only the unproved statements. Sampling
and checking them is the pipeline ``stp eval`` uses too (``stp.prove``): chunks of
``run.chunk_targets`` targets, each distinct (target, proof) checked once and counted with
its multiplicity; a proof citing the target's own library name (``Target.forbidden``) is
``unsound``.
"""

from __future__ import annotations

from collections.abc import Iterable

from stp.config import STPConfig
from stp.selfplay.history import RunHistory
from stp.selfplay.records import Conjecture, Target


def round_k(config: STPConfig, index: int) -> int:
    """Proof attempts per target in round ``index``: 64 in round 0, then 32 (STP)."""
    sel = config.selection
    return sel.proofs_per_statement_round0 if index == 0 else sel.proofs_per_statement


def choose_targets(
    dataset: Iterable[Target],
    history: RunHistory,
    conjectures: Iterable[Conjecture],
    config: STPConfig,
) -> list[Target]:
    resample = config.selection.resample_pass_rate_max
    targets = []
    for target in dataset:
        record = history.statements.get(target.id)
        if (
            record is None
            or not record.proved
            or (config.run.mode == "stp" and record.best_pass_rate <= resample)
        ):
            targets.append(target)
    return targets + [conjecture.as_target() for conjecture in conjectures]
