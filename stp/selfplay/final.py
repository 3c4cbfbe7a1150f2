"""Final re-training: the start model trained on every correct proof the run found.

Streams the verified proofs of all finished rounds, keeps for each statement (dataset
statements and conjectures alike) its ``selection.final_max_proofs_per_statement`` shortest
distinct correct proofs, and trains the model round 0 sampled from (the paper's base,
DeepSeek-Prover-V1.5-SFT; here the initial fine-tune when the run has one) on them with
weight 1 each, into ``runs/<name>/final/model``. Both steps are redone when their inputs
change: run again after more rounds, it re-trains on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from stp.assistants import assistant
from stp.config import STPConfig
from stp.errors import DataError, MissingInput
from stp.prove import VerifiedAttempt, read_verified
from stp.runs import RunLayout, stage_seed, start_model
from stp.selfplay.records import (
    MODEL_DIR,
    TARGETS_FILE,
    TRAIN_FILE,
    Target,
    TrainingExample,
    read_records,
    write_records,
)
from stp.selfplay.selection import PROVED
from stp.selfplay.training import apply_torch_threads, train_model
from stp.stages import fingerprint, read_stage, run_stage


def _shortest_first(proof: str) -> tuple[int, str]:
    return (len(proof), proof)


def shortest_proofs(rows: Iterable[VerifiedAttempt], limit: int) -> dict[str, list[str]]:
    """target -> its ``limit`` shortest distinct correct proofs (ties by text), over ``rows``
    of any number of rounds. Memory: at most ``2 * limit`` proofs per statement (a proof cut
    from a subset's shortest ``limit`` can never be among the whole set's)."""
    kept: dict[str, set[str]] = {}
    for row in rows:
        if row.verdict != PROVED:
            continue
        proofs = kept.setdefault(row.target, set())
        proofs.add(row.proof)
        if len(proofs) > 2 * limit:
            kept[row.target] = set(sorted(proofs, key=_shortest_first)[:limit])
    return {
        target: sorted(proofs, key=_shortest_first)[:limit]
        for target, proofs in sorted(kept.items())
    }


def final_retrain(config: STPConfig, log: Callable[[str], None] = print) -> Path:
    apply_torch_threads(config)
    layout = RunLayout.of(config)
    rounds = layout.finished_rounds()
    if not rounds:
        raise MissingInput(f"run {layout.root} has no finished round to re-train from")
    lang = assistant(config.verification.backend).language
    statements = {t.id: t for t in read_records(layout.targets, Target)}
    verified_stages = []
    for index in rounds:
        for target in read_records(layout.round_dir(index) / TARGETS_FILE, Target):
            statements.setdefault(target.id, target)
        verified_stages.append(read_stage(layout.round_dir(index), "verify"))

    def verified() -> Iterator[VerifiedAttempt]:
        for index in rounds:
            directory = layout.round_dir(index)
            record = read_stage(directory, "targets")
            assert record is not None
            yield from read_verified(directory, range(int(record.info["chunks"])))

    directory = layout.final
    examples = directory / TRAIN_FILE
    out = directory / MODEL_DIR
    limit = config.selection.final_max_proofs_per_statement

    def collect() -> dict[str, Any]:
        proofs = shortest_proofs(verified(), limit)
        count = write_records(
            examples,
            (
                TrainingExample(statements[t].prompt(lang), lang.prover_completion(p), 1.0)
                for t, texts in proofs.items()
                for p in texts
            ),
        )
        if count == 0:
            raise DataError(f"run {layout.root} has no correct proof yet: nothing to re-train on")
        log(f"final: {count} proofs of {len(proofs)} statements from rounds 0-{rounds[-1]}")
        return {"statements": len(proofs), "examples": count, "rounds": len(rounds)}

    collected = run_stage(
        directory,
        "collect",
        [examples],
        collect,
        log,
        inputs=fingerprint({"final_max_proofs_per_statement": limit}, verified_stages),
        legacy_ok=False,  # earlier versions did not notice new rounds
    )
    base = start_model(config, layout)

    def train() -> dict[str, Any]:
        seed = stage_seed(config.run.seed, -2, "final")
        return {"model": str(train_model(base, examples, out, config.training, seed, log))}

    settings = {"base": base, "seed": config.run.seed, "training": vars(config.training)}
    run_stage(
        directory,
        "train",
        [out],
        train,
        log,
        inputs=fingerprint(settings, [collected]),
        legacy_ok=False,
    )
    log(f"final: model written to {out}")
    return out
