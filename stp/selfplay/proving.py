"""The prover's half of a round: which statements get proof attempts, sampling them, and
checking them.

Proof attempts go to every unproved dataset statement, every new conjecture, and proved
statements whose best pass rate is at most ``selection.resample_pass_rate_max``;
``expert_iteration`` and ``parallel_sampling`` sample only the unproved statements. Targets
are cut into chunks of ``run.chunk_targets``; sampling and checking write one chunk at a
time (``stp.artifacts.write_chunk``), so a killed round loses at most one chunk. Each
distinct (target, proof) is checked once and counted with its multiplicity; a proof citing
the target's own library name (``Target.forbidden``) is ``unsound``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from stp.artifacts import chunk_done, chunk_path, read_jsonl, write_chunk
from stp.config import STPConfig
from stp.languages.base import FormalLanguage
from stp.prove import ModelSampler, Progress
from stp.selfplay.history import RunHistory
from stp.selfplay.records import Attempt, Conjecture, Target, VerifiedAttempt, iter_records
from stp.selfplay.selection import count_distinct
from stp.verify.types import Verifier


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


def cut(targets: Sequence[Target], size: int) -> list[list[Target]]:
    return [list(targets[i : i + size]) for i in range(0, len(targets), size)]


def sample_proofs(
    chunks: Sequence[Sequence[Target]],
    k: int,
    sampler: ModelSampler,
    lang: FormalLanguage,
    out: Path,
    seed_of_chunk: Callable[[int], int],
    progress: Callable[[int], Progress],
) -> None:
    """``k`` proofs of every target into ``out/chunk_*.jsonl``, skipping finished chunks.
    ``progress(done_before)`` makes the callback for one chunk."""
    done_before = 0
    for index, chunk in enumerate(chunks):
        if not chunk_done(out, index):
            prompts = [t.prompt(lang) for t in chunk]
            samples = sampler.generate(prompts, k, seed_of_chunk(index), progress(done_before))
            attempts = [
                Attempt(t.id, lang.parse_proof(c.text, t.formal_statement), c.num_tokens)
                for t, completions in zip(chunk, samples, strict=True)
                for c in completions
            ]
            write_chunk(out, index, (a.to_dict() for a in attempts))
        done_before += len(chunk)


def check_proofs(
    chunks: Sequence[Sequence[Target]],
    attempts_dir: Path,
    out: Path,
    make_verifier: Callable[[], Verifier],
    progress: Progress,
    on_chunk: Callable[[int], None] = lambda jobs: None,
) -> None:
    """Each distinct proof of ``attempts_dir``'s chunks checked once, into
    ``out/chunk_*.jsonl`` (finished chunks skipped; no verifier built when all are)."""
    todo = [i for i in range(len(chunks)) if not chunk_done(out, i)]
    if not todo:
        return
    verifier = make_verifier()
    try:
        for index in todo:
            targets = {t.id: t for t in chunks[index]}
            attempts = iter_records(read_jsonl(chunk_path(attempts_dir, index)), Attempt)
            counts = count_distinct(attempts)
            jobs = [
                targets[target_id].job(f"{index}:{number}", proof)
                for number, (target_id, proof) in enumerate(counts)
            ]
            on_chunk(len(jobs))
            results = verifier.verify(jobs, progress)
            verified = [
                VerifiedAttempt(
                    target, proof, count, result.verdict.value, round(result.check_seconds, 4)
                )
                for ((target, proof), count), result in zip(counts.items(), results, strict=True)
            ]
            write_chunk(out, index, (v.to_dict() for v in verified))
    finally:
        verifier.close()  # kills every checker process (or Ray actor)
