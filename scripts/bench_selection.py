"""Benchmark: dedup + selection + training-set building over 1 M synthetic proof attempts.

The original STP run verified 241 M proofs, so the selection side of a round must stream:
this script writes a round's worth of synthetic attempts (JSONL chunks, as the generate stage
does), then times what a round does with them after sampling, minus the proof checker:

1. the verify stage's work (``stp.prove.check``) with a synthetic verdict in place of the
   proof assistant: per chunk, identical (target, proof) attempts counted once with their
   multiplicity, written as verified chunks;
2. ``round.select`` (the select stage): per-target outcomes in one pass, pass rates, barely-provable
   conjectures, elegance filter, prover weights, ``stats/prover/conjecturer/train.jsonl``.

Embedding re-weighting is switched off: its cost is the model's forward passes, not selection.

    python scripts/bench_selection.py                    # 1 M attempts (32 per target)
    python scripts/bench_selection.py --attempts 200000  # smaller

It prints wall seconds of the timed part and the process's peak RSS (resource.getrusage).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stp import prove
from stp.artifacts import atomic_write_jsonl, write_chunk
from stp.config import load_config
from stp.runs import RunLayout
from stp.selfplay.context import Round
from stp.selfplay.history import RunHistory
from stp.selfplay.records import CONJECTURE, DATASET, TARGETS_FILE, Target, read_records
from stp.selfplay.round import select
from stp.stages import write_marker
from stp.verify.types import Verdict, VerifyJob, VerifyResult


def synthetic_round(root: Path, attempts: int, k: int, chunk_targets: int) -> Round:
    config = load_config(
        None,
        [
            f"run.output_dir={root}",
            "run.name=bench",
            "run.corpus=null",
            "selection.reweight_conjectures=false",
        ],
    )
    layout = RunLayout.of(config)
    rng = random.Random(0)
    n_targets = attempts // k
    n_conjectures = n_targets // 5
    statement = "Theorem {} (n m : nat) : n + m + {} = m + n + {}."
    dataset = [
        {
            "id": f"s{i}",
            "header": "Require Import Arith.\n",
            "formal_statement": statement.format(f"s{i}", i, i),
            "informal": None,
            "forbidden": [],
        }
        for i in range(n_targets - n_conjectures)
    ]
    atomic_write_jsonl(layout.targets, dataset)
    directory = layout.round_dir(0)
    conjectures = [
        {
            "id": f"c{i}",
            "header": "Require Import Arith.\n",
            "formal_statement": statement.format(f"c{i}", i, i + 1),
            "seed": "s0",
            "seed_statement": dataset[0]["formal_statement"],
            "seed_proof": "intros. lia.",
            "lemma": None if i % 2 else "Nat.add_comm",
            "lemma_text": None if i % 2 else "Nat.add_comm : forall n m, n + m = m + n",
            "key": hashlib.blake2b(str(i).encode(), digest_size=16).hexdigest(),
        }
        for i in range(n_conjectures)
    ]
    atomic_write_jsonl(directory / "conjectures.jsonl", conjectures)
    targets = [{**t, "kind": DATASET} for t in dataset]
    targets += [{**c, "informal": None, "forbidden": [], "kind": CONJECTURE} for c in conjectures]
    atomic_write_jsonl(directory / "targets.jsonl", targets)
    chunks = -(-len(targets) // chunk_targets)
    write_marker(
        directory,
        "targets",
        [directory / "targets.jsonl"],
        0.0,
        {"k": k, "chunk_targets": chunk_targets, "chunks": chunks},
    )
    tactics = ["lia.", "auto.", "ring.", "rewrite Nat.add_comm. reflexivity.", "omega.", "trivial."]
    for index in range(chunks):
        rows = []
        for target in targets[index * chunk_targets : (index + 1) * chunk_targets]:
            for _ in range(k):
                # a handful of distinct proofs per target, so dedup has work to do
                proof = "intros. " + " ".join(rng.choices(tactics, k=rng.randint(1, 3)))
                rows.append({"target": target["id"], "proof": proof, "tokens": len(proof) // 3})
        write_chunk(directory / "attempts", index, rows)
    return Round(
        config=config,
        layout=layout,
        index=0,
        model="unused",
        dataset=[Target.from_dict(t) for t in dataset],
        history=RunHistory(),
        log=print,
    )


class SyntheticVerifier:
    """Deterministic synthetic verdicts: about one proof in six is correct."""

    def verify(
        self, jobs: Sequence[VerifyJob], progress: Callable[[int], None] | None = None
    ) -> list[VerifyResult]:
        return [VerifyResult(job.id, self.verdict(job)) for job in jobs]

    @staticmethod
    def verdict(job: VerifyJob) -> Verdict:
        key = f"{job.formal_statement}\x00{job.proof}".encode()
        digest = hashlib.blake2b(key, digest_size=2).digest()
        return Verdict.PROVED if digest[0] < 43 else Verdict.FAILED

    def close(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--chunk-targets", type=int, default=2048)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ctx = synthetic_round(Path(tmp), args.attempts, args.k, args.chunk_targets)
        made = time.perf_counter() - t0
        print(f"wrote {args.attempts} synthetic attempts in {made:.1f}s (not timed)")

        start = time.perf_counter()
        targets = read_records(ctx.path(TARGETS_FILE), Target)
        chunks = prove.cut(targets, args.chunk_targets)
        distinct = 0

        def count(jobs: int) -> None:
            nonlocal distinct
            distinct += jobs

        prove.check(ctx.directory, chunks, SyntheticVerifier, on_jobs=count)
        dedup = time.perf_counter() - start
        info = select(ctx)
        total = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"dedup: {args.attempts} attempts -> {distinct} distinct in {dedup:.1f}s")
    print(f"select: {info}")
    print(f"timed total: {total:.1f}s; peak RSS {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
