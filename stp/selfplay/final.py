"""Final re-training: the start model trained on every correct proof the run found.

Streams the verified proofs of all finished rounds, keeps for each statement (dataset
statements and conjectures alike) its ``selection.final_max_proofs_per_statement`` shortest
distinct correct proofs, and trains the model round 0 sampled from (the paper's base,
DeepSeek-Prover-V1.5-SFT; here the initial fine-tune when the run has one) on them with
weight 1 each, into ``runs/<name>/final/model``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stp.artifacts import read_jsonl
from stp.config import STPConfig
from stp.data import DataError
from stp.languages import language
from stp.selfplay.layout import RunLayout, stage_seed
from stp.selfplay.round import apply_torch_threads, start_model, train_model
from stp.selfplay.selection import PROVED
from stp.selfplay.stages import read_chunks, read_stage, run_stage


def _shortest_first(proof: str) -> tuple[int, str]:
    return (len(proof), proof)


def shortest_proofs(rows: Iterator[dict[str, Any]], limit: int) -> dict[str, list[str]]:
    """target -> its ``limit`` shortest distinct correct proofs (ties by text), over ``rows``
    of any number of rounds. Memory: at most ``2 * limit`` proofs per statement (a proof cut
    from a subset's shortest ``limit`` can never be among the whole set's)."""
    kept: dict[str, set[str]] = {}
    for row in rows:
        if row["verdict"] != PROVED:
            continue
        proofs = kept.setdefault(row["target"], set())
        proofs.add(row["proof"])
        if len(proofs) > 2 * limit:
            kept[row["target"]] = set(sorted(proofs, key=_shortest_first)[:limit])
    return {
        target: sorted(proofs, key=_shortest_first)[:limit]
        for target, proofs in sorted(kept.items())
    }


def final_retrain(config: STPConfig, log: Callable[[str], None] = print) -> Path:
    apply_torch_threads(config)
    layout = RunLayout.of(config)
    rounds = layout.finished_rounds()
    if not rounds:
        raise FileNotFoundError(f"run {layout.root} has no finished round to re-train from")
    lang = language(config.verification.backend)
    statements: dict[str, dict[str, Any]] = {t["id"]: t for t in read_jsonl(layout.targets)}
    for index in rounds:
        for target in read_jsonl(layout.round_dir(index) / "targets.jsonl"):
            statements.setdefault(target["id"], target)

    def verified_rows() -> Iterator[dict[str, Any]]:
        for index in rounds:
            directory = layout.round_dir(index)
            record = read_stage(directory, "targets")
            assert record is not None
            yield from read_chunks(directory / "verified", int(record.info["chunks"]))

    directory = layout.final
    examples = directory / "train.jsonl"
    out = directory / "model"

    def collect() -> dict[str, Any]:
        from stp.artifacts import atomic_write_jsonl

        proofs = shortest_proofs(verified_rows(), config.selection.final_max_proofs_per_statement)
        count = atomic_write_jsonl(
            examples,
            (
                {
                    "prompt": lang.prover_prompt(
                        statements[t]["header"],
                        statements[t]["formal_statement"],
                        statements[t].get("informal"),
                    ),
                    "completion": lang.prover_completion(proof),
                    "weight": 1.0,
                }
                for t, texts in proofs.items()
                for proof in texts
            ),
        )
        if count == 0:
            raise DataError(f"run {layout.root} has no correct proof yet: nothing to re-train on")
        log(f"final: {count} proofs of {len(proofs)} statements from rounds 0-{rounds[-1]}")
        return {"statements": len(proofs), "examples": count, "rounds": len(rounds)}

    run_stage(directory, "collect", [examples], collect, log)
    base = start_model(config, layout)
    run_stage(
        directory,
        "train",
        [out],
        lambda: {
            "model": str(
                train_model(base, examples, out, config, stage_seed(config.run.seed, -2, "final"))
            )
        },
        log,
    )
    log(f"final: model written to {out}")
    return out
