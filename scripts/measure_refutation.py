"""How many of a run's false conjectures the gate's refutation check catches, and that it
catches no true one.

Reads the conjectures that got proof attempts in the given runs (``round_*/stats.jsonl``, one
per distinct statement under its header) and puts them through the gate with only its
elaboration and refutation checks (``gate.<assistant>_refutation_tactics``, the config's
lists; the trivial, restatement and vacuous lists emptied). A conjecture the prover proved at
least once is true, so the check must refute none of them; of those with no correct proof,
it prints how many it refutes::

    python scripts/measure_refutation.py --config configs/tiny-rocq.yaml \\
        runs/tiny-rocq-compare/runs/stp-s0 runs/tiny-rocq-compare/runs/stp-s1

Prints the load average (the machine is shared) and the checking time.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from stp.config import add_config_arguments, config_from_args
from stp.envinfo import load_average
from stp.selfplay import gate
from stp.selfplay.records import (
    CONJECTURES_FILE,
    STATS_FILE,
    Conjecture,
    StatementStats,
    read_records,
)
from stp.verify import make_verifier


def targeted_conjectures(runs: list[Path]) -> tuple[list[Conjecture], dict[str, bool]]:
    """Each distinct conjecture that got proof attempts, and whether it was ever proved."""
    chosen: dict[tuple[str, str], Conjecture] = {}
    proved: dict[str, bool] = {}
    for round_dir in sorted(d for run in runs for d in run.glob("round_*")):
        if not (round_dir / STATS_FILE).exists():
            continue
        # ids are unique within a run, not across runs
        by_id = {
            c.id: dataclasses.replace(c, id=f"{round_dir.parent}/{c.id}")
            for c in read_records(round_dir / CONJECTURES_FILE, Conjecture)
        }
        for stats in read_records(round_dir / STATS_FILE, StatementStats):
            if stats.kind != "conjecture":
                continue
            c = by_id[stats.target]
            first = chosen.setdefault((c.header, c.key), c)
            proved[first.id] = proved.get(first.id, False) or stats.correct > 0
    return list(chosen.values()), proved


def main(argv: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Prints and returns (conjectures, refuted) per group."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="Run folders (with round_NNN/).")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    backend = config.verification.backend
    print(f"load average {load_average()}", flush=True)

    conjectures, proved = targeted_conjectures(args.runs)
    only_refutation = dataclasses.replace(
        config.gate,
        **{f"{backend}_{check}_tactics": [] for check in ("trivial", "restatement", "vacuous")},
    )
    settings = dataclasses.replace(config.verification, timeout_s=config.gate.timeout_s)
    started = time.perf_counter()
    with make_verifier(settings) as verifier:
        outcomes = gate.screen(conjectures, verifier, only_refutation, backend)
    seconds = time.perf_counter() - started
    figures = {}
    for label, was_proved in (("proved at least once", True), ("never proved", False)):
        group = [o for o in outcomes if proved[o.conjecture] is was_proved]
        figures[label] = (len(group), sum(o.outcome == gate.REFUTED for o in group))
        print(f"{label}: {figures[label][0]} conjectures, {figures[label][1]} refuted")
    print(f"{len(outcomes)} checked in {seconds:.0f} s, load average {load_average()}")
    return figures


if __name__ == "__main__":
    main()
