"""The no-learning floor on miniF2F-Rocq: how many statements a fixed list of automation
tactics proves, one attempt each, checked by the Rocq verifier as ``stp verify`` checks them.

    PYTHONPATH=. python scripts/automation_floor.py                    # test split, 16 tactics
    PYTHONPATH=. python scripts/automation_floor.py --split valid --timeout 20 --workers 2

Prints the statements proved (and the fraction of the split), how many each tactic proves
alone, the verdict counts, and the wall time with the load average. ``--out FILE`` also writes
every result as JSON lines (the rows ``stp verify --out`` writes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from stp.config import VerificationConfig
from stp.data import load_benchmark
from stp.verify import Verdict, VerifyJob, make_verifier

TACTICS = (
    "lia.",
    "nia.",
    "lra.",
    "nra.",
    "field.",
    "ring.",
    "auto.",
    "intuition.",
    "tauto.",
    "firstorder.",
    "reflexivity.",
    "trivial.",
    "intros; lia.",
    "intros; nia.",
    "intros; lra.",
    "intros; nra.",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    statements = list(load_benchmark("minif2f", "rocq", split=args.split))
    jobs = [
        VerifyJob(f"{s.name}/{i}", s.header, s.formal_statement, tactic)
        for s in statements
        for i, tactic in enumerate(TACTICS)
    ]
    print(f"{len(jobs)} attempts: {len(statements)} statements x {len(TACTICS)} tactics")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    config = VerificationConfig(workers=args.workers, timeout_s=args.timeout)
    start = time.perf_counter()
    with make_verifier(config) as verifier:
        results = verifier.verify(jobs)
    wall = time.perf_counter() - start
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    proved = {j.formal_statement for j, r in zip(jobs, results, strict=True) if r.proved}
    by_tactic = Counter(j.proof for j, r in zip(jobs, results, strict=True) if r.proved)
    print(
        f"proved {len(proved)} of {len(statements)} statements "
        f"({len(proved) / len(statements):.1%}) in {wall:.0f} s on {args.workers} workers"
    )
    print("verdicts:", dict(Counter(r.verdict.value for r in results)))
    for tactic in TACTICS:
        print(f"  {tactic:<16} {by_tactic[tactic]:3d}")
    errors = Counter(r.detail[:90] for r in results if r.verdict is Verdict.VERIFIER_ERROR)
    for detail, count in errors.most_common(5):
        print(f"  verifier_error x{count}: {detail}")
    if args.out is not None:
        args.out.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
