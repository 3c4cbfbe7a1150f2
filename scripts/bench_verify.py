"""Rocq verifier throughput: the warm coqtop pool vs one cold ``coqc`` per proof, same checks.

    PYTHONPATH=. python scripts/bench_verify.py                    # 2 workers, 323 attempts
    PYTHONPATH=. python scripts/bench_verify.py --workers 4 --statements 100 --timeout 10

The attempts are a realistic mix: miniF2F-Rocq valid statements whose header loads here, each
with a few plausible tactic proofs (``lia.``, ``nia.``, ``intros; lra.``, ``reflexivity.``,
...; most fail, some succeed), some garbage, and a few loops that time out. A loop is a
``repeat`` of a tactic that always makes progress, as a model's runaway ``repeat`` does: it
never ends, in either mode, however fast the machine (a recursive Ltac loop would end in a
stack overflow after about 5 s, a timeout or a failure depending on the machine's load).

- warm: ``make_verifier`` with every soundness check on (``stp.verify.rocq``).
- cold: per proof, ``coqc`` of the assembled file in a fresh directory; for a file that
  compiles, a second ``coqc`` of a checker file against it (``Definition chk : <statement> :=
  <name>.`` and ``Print Assumptions chk.``) and, when it prints assumptions, a third with
  ``About`` for each: the same checks the warm workers make. Same screen, same allow-list.

Both run ``--workers`` proofs at a time. Printed: proofs/s of each, their ratio, how often
their verdicts agree, the per-proof cost of the soundness checks in each mode, and the same
ratio without the timeouts: an attempt that times out holds a worker for the whole limit in
either mode, so a few of them cap the overall ratio (7 timeouts of 5 s are 35 worker-seconds
of both modes' total), while the ratio on the other attempts is what the warm pool changes.
The ceiling line says how far: the ratio of a verifier that checked every other attempt in
no time at all.
The load average is printed before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stp.config import VerificationConfig
from stp.data import load_benchmark
from stp.languages import ROCQ
from stp.verify import Verdict, VerifyJob, make_verifier, rocq

PROOFS = (
    "lia.",
    "intros; lia.",
    "nia.",
    "intros; nia.",
    "reflexivity.",
    "auto.",
    "intros; lra.",
    "intros; nra.",
    "intros. field.",
    "simpl; ring.",
    "intros; subst; lia.",
    "trivial.",
    "intros; subst; lra.",
    "compute; reflexivity.",
    "vm_compute; reflexivity.",
    "intros; subst; nia.",
)
GARBAGE = ("intros. apply foo_bar.", "intros x y. lia", "split. -", "unfold not; eauto 7.")
LOOP = "repeat pose proof I."


def build_jobs(statements: int, per_statement: int, loops: int, seed: int) -> list[VerifyJob]:
    rng = random.Random(seed)
    loadable: dict[str, bool] = {}
    jobs: list[VerifyJob] = []
    candidates = list(load_benchmark("minif2f", "rocq", split="valid"))
    rng.shuffle(candidates)
    for s in candidates:
        if len(jobs) >= statements * per_statement:
            break
        if s.header not in loadable:
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "h.v").write_text(s.header)
                loadable[s.header] = (
                    subprocess.run(["coqc", "h.v"], cwd=tmp, capture_output=True).returncode == 0
                )
        if not loadable[s.header]:
            continue
        for i, proof in enumerate(rng.sample(PROOFS, per_statement)):
            if rng.random() < 0.05:
                proof = rng.choice(GARBAGE)
            jobs.append(VerifyJob(f"{s.name}/{i}", s.header, s.formal_statement, proof))
    for i in range(loops):
        job = jobs[i * len(jobs) // max(1, loops)]
        jobs.append(VerifyJob(f"loop/{i}", job.header, job.formal_statement, LOOP))
    rng.shuffle(jobs)
    return jobs


# ---------------------------------------------------------------------------- cold coqc


def _coqc(path: Path, timeout_s: float) -> tuple[int | None, str]:
    try:
        done = subprocess.run(
            ["coqc", "-Q", ".", "Job", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stdout + done.stderr


def cold_check(job: VerifyJob, timeout_s: float) -> tuple[Verdict, float]:
    """One cold check; returns the verdict and the seconds spent in the soundness checks."""
    screened = rocq.screen_proof(job.proof)
    if screened is not None:
        return screened[0], 0.0
    statement = rocq.parse_statement(job.formal_statement)
    with tempfile.TemporaryDirectory() as tmp:
        cand = Path(tmp) / "cand.v"
        cand.write_text(ROCQ.assemble(job.header, job.formal_statement, job.proof))
        code, _ = _coqc(cand, timeout_s)
        if code is None:
            return Verdict.TIMEOUT, 0.0
        if code != 0:
            return Verdict.FAILED, 0.0
        start = time.perf_counter()
        check = Path(tmp) / "check.v"
        check.write_text(
            f"{job.header}\nRequire Job.cand.\nDefinition stmt := ({statement.type}).\n"
            f"Definition chk : stmt := Job.cand.{statement.name}.\nPrint Assumptions chk.\n"
        )
        code, out = _coqc(check, timeout_s)
        if code is None:
            return Verdict.TIMEOUT, time.perf_counter() - start
        if code != 0:
            return Verdict.UNSOUND, time.perf_counter() - start
        closed = "Closed under the global context" in out
        names, unsafe = ([], "") if closed else rocq.parse_assumptions(out[out.find("Axioms:") :])
        verdict = Verdict.UNSOUND if unsafe else Verdict.PROVED
        if names and not unsafe:
            about = Path(tmp) / "about.v"
            about.write_text(
                f"{job.header}\nRequire Import Job.cand.\n"
                + "".join(f"About {n}.\n" for n in names)
            )
            _, out = _coqc(about, timeout_s)
            resolved = re.findall(r"Expands to: \w+\s+(\S+)", out)
            if len(resolved) != len(names) or not set(resolved) <= rocq.ALLOWED_AXIOMS:
                verdict = Verdict.UNSOUND
        return verdict, time.perf_counter() - start


# ---------------------------------------------------------------------------- harness


def timed_exchanges(kinds: dict[str, float]) -> Callable[[], None]:
    """Add the time of the warm workers' soundness exchanges (questions, About) to ``kinds``;
    returns a function that undoes the wrapping."""
    original = rocq._Coqtop.exchange

    def exchange(self: Any, text: str, timeout_s: float) -> str:
        start = time.perf_counter()
        try:
            return original(self, text, timeout_s)
        finally:
            if text.startswith(("End Cand_", "About ")):
                kinds["checks"] += time.perf_counter() - start

    rocq._Coqtop.exchange = exchange  # type: ignore[method-assign]
    return lambda: setattr(rocq._Coqtop, "exchange", original)


def timed_cold_check(job: VerifyJob, timeout_s: float) -> tuple[Verdict, float, float]:
    """``cold_check`` and the seconds the whole attempt took."""
    start = time.perf_counter()
    verdict, checks = cold_check(job, timeout_s)
    return verdict, checks, time.perf_counter() - start


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--statements", type=int, default=40)
    parser.add_argument("--per-statement", type=int, default=8)
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    jobs = build_jobs(args.statements, args.per_statement, args.loops, args.seed)
    print(f"{len(jobs)} attempts on {len({j.formal_statement for j in jobs})} statements")
    print(f"{len(os.sched_getaffinity(0))} CPUs, load average {load_average()}")

    kinds = {"checks": 0.0}
    undo = timed_exchanges(kinds)
    config = VerificationConfig(workers=args.workers, timeout_s=args.timeout)
    start = time.perf_counter()
    with make_verifier(config) as verifier:
        warm = verifier.verify(jobs)
    warm_s = time.perf_counter() - start
    undo()

    start = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        cold = list(pool.map(lambda j: timed_cold_check(j, args.timeout), jobs))
    cold_s = time.perf_counter() - start
    print(f"load average after: {load_average()}")

    warm_counts = Counter(r.verdict.value for r in warm)
    cold_counts = Counter(v.value for v, _, _ in cold)
    agree = sum(r.verdict is v for r, (v, _, _) in zip(warm, cold, strict=True))
    proved = max(1, warm_counts["proved"])
    cold_checks = sum(seconds for _, seconds, _ in cold)
    n = len(jobs)
    print(f"warm pool : {n / warm_s:7.1f} proofs/s  ({warm_s:.1f} s)  {dict(warm_counts)}")
    print(f"cold coqc : {n / cold_s:7.1f} proofs/s  ({cold_s:.1f} s)  {dict(cold_counts)}")
    print(f"speed-up  : {cold_s / warm_s:.1f}x on {args.workers} workers")
    print(f"verdicts agree on {agree}/{n} attempts")
    print(
        "soundness checks, worker-seconds per attempt (per proved attempt): "
        f"warm {kinds['checks'] / n * 1000:.0f} ms ({kinds['checks'] / proved * 1000:.0f} ms), "
        f"cold {cold_checks / n * 1000:.0f} ms ({cold_checks / proved * 1000:.0f} ms)"
    )
    # Worker-seconds per attempt; the warm pool checks a duplicate once (Deduplicated).
    warm_seconds = {job.key(): r for job, r in zip(jobs, warm, strict=True)}.values()
    warm_out = [r.check_seconds for r in warm_seconds if r.verdict is Verdict.TIMEOUT]
    warm_in = sum(r.check_seconds for r in warm_seconds if r.verdict is not Verdict.TIMEOUT)
    cold_out = [seconds for v, _, seconds in cold if v is Verdict.TIMEOUT]
    cold_in = sum(seconds for v, _, seconds in cold if v is not Verdict.TIMEOUT)
    print(
        f"timeouts  : warm {len(warm_out)} x {sum(warm_out) / max(1, len(warm_out)):.2f} s, "
        f"cold {len(cold_out)} x {sum(cold_out) / max(1, len(cold_out)):.2f} s; they are "
        f"{sum(warm_out) / (warm_s * args.workers):.0%} of the warm pool's worker time"
    )
    print(
        f"without timeouts: warm {warm_in:.1f} worker-s, cold {cold_in:.1f} worker-s: "
        f"{cold_in / warm_in:.1f}x"
    )
    # A verifier that gave each attempt the same limit, and checked everything else in no time
    # at all, would still spend the timeouts' worker-seconds: the best ratio this mix allows.
    if warm_out:
        ceiling = (cold_in + sum(cold_out)) / sum(warm_out)
        print(f"ceiling   : {ceiling:.1f}x for any verifier with the same {args.timeout:g} s limit")
    for r, (v, _, _) in zip(warm, cold, strict=True):
        if r.verdict is not v:
            print(f"  differs: {r.id}: warm {r.verdict.value} ({r.detail[:60]}), cold {v.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
