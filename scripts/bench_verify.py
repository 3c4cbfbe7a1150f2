"""Verifier throughput: the local pool against Ray actors, on the same distinct Rocq jobs.

    # local pool of W coqtops, then a local one-node Ray cluster with W verifier slots
    python scripts/bench_verify.py --jobs 200 --workers 2
    # local pool here, then the cluster's verifier nodes (`stp verify-workers` on each)
    python scripts/bench_verify.py --jobs 5000 --workers 16 --ray-address HEAD:6379

Two thirds of the proofs are correct, one third fail; every proof text is distinct, so
deduplication does not shortcut anything. Both runs are checked to give the same verdicts.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time

from stp.config import VerificationConfig
from stp.verify import VerifyJob, make_verifier
from stp.verify.distributed import RESOURCE, import_ray

HEADER = "Require Import Arith Lia.\n"
STATEMENT = "Theorem add_zero (n : nat) : n + 0 = n."


def bench(config: VerificationConfig, jobs: list[VerifyJob], label: str) -> list[str]:
    with make_verifier(config) as verifier:
        verifier.verify(jobs[:1])  # start the workers and load the header before timing
        start = time.perf_counter()
        results = verifier.verify(jobs)
        seconds = time.perf_counter() - start
    print(f"{label}: {len(jobs)} proofs in {seconds:.2f} s = {len(jobs) / seconds:.1f} proofs/s")
    return [r.verdict.value for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="Local coqtops / Ray slots.")
    parser.add_argument("--ray-address", help="A running cluster (default: start a local one).")
    parser.add_argument("--chunk-size", type=int, default=8, help="= verification.ray_chunk_size")
    args = parser.parse_args()

    jobs = [
        VerifyJob(f"j{i}", HEADER, STATEMENT, f'idtac "{i}". ' + ("lia." if i % 3 else "simpl."))
        for i in range(args.jobs)
    ]
    config = VerificationConfig(workers=args.workers, ray_chunk_size=args.chunk_size)
    local = bench(config, jobs, f"local pool ({args.workers} workers)")

    ray = import_ray()
    if args.ray_address is None:
        ray.init(
            address="local",
            num_cpus=args.workers,
            resources={RESOURCE: args.workers},
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    address = args.ray_address or ray.get_runtime_context().gcs_address
    on_ray = bench(dataclasses.replace(config, ray_address=address), jobs, f"ray ({address})")
    assert on_ray == local, "Ray and the local pool disagree"


if __name__ == "__main__":
    main()
