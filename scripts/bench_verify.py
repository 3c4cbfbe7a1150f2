"""Rocq verifier throughput: the warm two-line verifier vs one cold ``coqc`` per proof, every
check on in both.

    PYTHONPATH=. python scripts/bench_verify.py                       # 2 workers
    PYTHONPATH=. python scripts/bench_verify.py --per-statement 16 --timeout 10

The mix is what the verifier sees in a round: miniF2F-Rocq statements (valid and test) whose header
loads here, each with ``--per-statement`` attempts; about a third of the attempts are
arithmetic proofs that succeed, the rest fail (plausible tactics that do not close the goal,
some garbage), and 1% are runaway ``repeat`` loops that never end, in either mode, however fast
the machine. A calibration pass (not timed) first tries the automation tactics below on every
statement; each statement one of them proves gets several distinct spellings of that proof and
failing attempts, and half as many statements that none proves get failing attempts only.
Only proofs that the calibration checked within ``FAST_S`` count as succeeding arithmetic.

- warm: ``make_verifier`` (``stp.verify.rocq``): warm coqtop workers, then the kernel re-check
  of every accepted proof in batches (coqc + coqchk).
- cold: per attempt, the same screen, then ``coqc`` of the assembled file with every check of
  the second line in it (the statement re-check, ``Print Assumptions``, ``Locate``), and for a
  file that compiles, ``coqchk`` on the result: the same checks, one proof at a time. Its
  limit is the timeout plus the time ``coqc`` takes to load the header alone (measured first),
  as the warm pool's limit starts after the header.

Both run ``--workers`` attempts at a time. Printed: attempts/s of each, their ratio, how often
their verdicts agree, the cost of the soundness checks per proved attempt in each mode, and the
ceiling: an attempt that times out holds a worker for the whole limit in either mode, so the
best ratio any verifier with the same limit could reach is the cold total over the timeouts'
worker-seconds. The load average is printed before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stp.config import VerificationConfig
from stp.data import load_benchmark
from stp.envinfo import load_average
from stp.verify import Verdict, VerifyJob, make_verifier, rocq
from stp.verify.rocq_proof import screen_proof

# Decision procedures: the "arithmetic proofs" of the mix (a computation by `reflexivity` can
# take seconds on these statements; that is a different mix).
AUTOMATION = (
    "lia.",
    "nia.",
    "intros; lia.",
    "intros; nia.",
    "lra.",
    "intros; lra.",
    "intros; nra.",
    "field.",
    "ring.",
    "intros; subst; lia.",
    "intros; subst; lra.",
)
# Distinct spellings of one succeeding proof (without its period): identical attempts are
# checked once.
SPELLINGS = (
    "{}.",
    "idtac; {}.",
    "try idtac; {}.",
    "({}).",
    "idtac. {}.",
    "all: {}.",
    "once ({}).",
    "first [{} | fail].",
    "solve [{}].",
    "progress ({}).",
)
FAILING = (
    "auto.",
    "trivial.",
    "intros; subst; auto.",
    "intros; split.",
    "exfalso; auto.",
    "intros; exact I.",
    "intros; congruence.",
    "intros x y. lia",
    "intros. apply foo_bar.",
    "split. -",
    "unfold not; eauto 7.",
    "intros; discriminate.",
    "constructor.",
    "intros; contradiction.",
)
LOOP = "repeat pose proof I."
# The succeeding third are cheap decision-procedure proofs (a `lia` proof costs milliseconds):
# a proof that takes seconds to check costs the same in both modes (the warm pool saves the
# header load, not the proof) and belongs with the loops, not with the arithmetic.
FAST_S = 0.5


def calibrate(timeout_s: float, workers: int) -> tuple[dict[str, list[VerifyJob]], list[Any]]:
    """(the succeeding attempts of each statement some tactic proves, the statements that none
    proves), among the statements whose header loads here."""
    statements = [
        s for split in ("valid", "test") for s in load_benchmark("minif2f", "rocq", split=split)
    ]
    jobs = [
        VerifyJob(f"{s.name}/{t}", s.header, s.formal_statement, t)
        for s in statements
        for t in AUTOMATION
    ]
    config = VerificationConfig(workers=workers, timeout_s=timeout_s)
    with make_verifier(config) as verifier:
        results = verifier.verify(jobs)
    proved: dict[str, VerifyJob] = {}
    loads: set[str] = set()
    for job, result in zip(jobs, results, strict=True):
        if result.verdict is Verdict.PROVED and result.check_seconds < FAST_S:
            proved.setdefault(job.formal_statement, job)
        if "does not load" not in result.detail and "does not elaborate" not in result.detail:
            loads.add(job.formal_statement)
    good = {
        statement: [
            VerifyJob(f"{j.id}/{k}", j.header, j.formal_statement, spelling.format(j.proof[:-1]))
            for k, spelling in enumerate(SPELLINGS)
        ]
        for statement, j in proved.items()
    }
    unproved = [
        s for s in statements if s.formal_statement in loads and s.formal_statement not in proved
    ]
    return good, unproved


def build_mix(
    good: dict[str, list[VerifyJob]], unproved: list[Any], per_statement: int, seed: int
) -> list[VerifyJob]:
    """Each statement some tactic proves with its succeeding spellings and failing attempts,
    then half as many statements with failing attempts only: a third succeed; 1% loop."""
    rng = random.Random(seed)
    mix: list[VerifyJob] = []
    for statement, succeeding in good.items():
        host = succeeding[0]
        failing = rng.sample(FAILING, per_statement - len(succeeding))
        mix += succeeding + [
            VerifyJob(f"{host.id}/fail{k}", host.header, statement, p)
            for k, p in enumerate(failing)
        ]
    for s in rng.sample(unproved, min(len(unproved), len(good) // 2)):
        mix += [
            VerifyJob(f"{s.name}/fail{k}", s.header, s.formal_statement, p)
            for k, p in enumerate(rng.sample(FAILING, min(per_statement, len(FAILING))))
        ]
    for i in range(max(1, len(mix) // 100)):
        host = mix[rng.randrange(len(mix))]
        mix.append(VerifyJob(f"loop/{i}", host.header, host.formal_statement, LOOP))
    rng.shuffle(mix)
    return mix


# ---------------------------------------------------------------------------- cold coqc


def header_seconds(headers: set[str]) -> dict[str, float]:
    """How long ``coqc`` takes to load each header alone: the cold mode's limit is the timeout
    plus that, so a proof gets the same time after its header as in the warm pool."""
    seconds = {}
    for header in headers:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "H.v").write_text(header)
            start = time.perf_counter()
            subprocess.run(["coqc", "-q", "H.v"], cwd=tmp, capture_output=True, check=False)
            seconds[header] = time.perf_counter() - start
    return seconds


def cold_check(job: VerifyJob, kernel: rocq.KernelCheck, timeout_s: float) -> Verdict:
    """One attempt checked cold: the screen, then coqc with every check, then coqchk."""
    screened = screen_proof(job.proof)
    if screened is not None:
        return screened[0]
    verdict = kernel.check_alone(job, timeout_s).verdict
    return Verdict.PROVED if verdict is None else verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-statement", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    good, unproved = calibrate(args.timeout, args.workers)
    jobs = build_mix(good, unproved, args.per_statement, args.seed)
    print(
        f"{len(jobs)} attempts on {len({j.formal_statement for j in jobs})} statements and "
        f"{len({j.header for j in jobs})} headers; {len(good)} statements proved by automation"
    )
    print(f"{len(os.sched_getaffinity(0))} CPUs, load average {load_average()}")

    config = VerificationConfig(workers=args.workers, timeout_s=args.timeout)
    start = time.perf_counter()
    with make_verifier(config) as verifier:
        warm = verifier.verify(jobs)
        kernel_s = verifier.inner.kernel_seconds  # type: ignore[attr-defined]
    warm_s = time.perf_counter() - start

    kernel = rocq.KernelCheck(config)
    header_s = header_seconds({j.header for j in jobs})
    start = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        timed = list(pool.map(lambda j: _timed(j, kernel, args.timeout + header_s[j.header]), jobs))
    cold_s = time.perf_counter() - start
    print(f"load average after: {load_average()}")

    cold = [v for v, _ in timed]
    warm_counts = Counter(r.verdict.value for r in warm)
    cold_counts = Counter(v.value for v in cold)
    agree = sum(r.verdict is v for r, v in zip(warm, cold, strict=True))
    proved = max(1, warm_counts["proved"])
    n = len(jobs)
    print(f"warm : {n / warm_s:7.1f} attempts/s  ({warm_s:.1f} s)  {dict(warm_counts)}")
    print(f"cold : {n / cold_s:7.1f} attempts/s  ({cold_s:.1f} s)  {dict(cold_counts)}")
    print(f"speed-up: {cold_s / warm_s:.1f}x on {args.workers} workers, every check on in both")
    print(f"verdicts agree on {agree}/{n} attempts")
    by_verdict: dict[Verdict, list[float]] = {}
    for verdict, seconds in timed:
        by_verdict.setdefault(verdict, []).append(seconds)
    cold_proved = by_verdict.get(Verdict.PROVED, [0.0])
    cold_failed = by_verdict.get(Verdict.FAILED, [0.0])
    print(
        "soundness checks per proved attempt: warm, the batched kernel re-check "
        f"{kernel_s / proved * 1000:.0f} ms (wall, {args.workers} batches at a time); cold, a "
        f"proved attempt takes {sum(cold_proved) / len(cold_proved) * 1000:.0f} ms of worker "
        f"time and a failed one {sum(cold_failed) / len(cold_failed) * 1000:.0f} ms"
    )
    cold_out = sum(by_verdict.get(Verdict.TIMEOUT, []))
    cold_all = sum(s for _, s in timed)
    if cold_out:
        print(
            f"ceiling: {cold_all / cold_out:.1f}x for any verifier with the same "
            f"{args.timeout:g} s limit (the timeouts are {cold_out:.0f} of the cold mode's "
            f"{cold_all:.0f} worker-seconds)"
        )
    for r, v in zip(warm, cold, strict=True):
        if r.verdict is not v:
            print(f"  differs: {r.id}: warm {r.verdict.value} ({r.detail[:70]}), cold {v.value}")
    return 0


def _timed(job: VerifyJob, kernel: rocq.KernelCheck, timeout_s: float) -> tuple[Verdict, float]:
    start = time.perf_counter()
    verdict = cold_check(job, kernel, timeout_s)
    return verdict, time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
