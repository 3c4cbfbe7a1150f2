"""``stp data``: inspect the bundled benchmarks."""

from __future__ import annotations

import argparse
from collections import Counter

from stp.data.benchmarks import BENCHMARKS, bundled_path, load_benchmark


def _list(args: argparse.Namespace) -> int:
    rows = []
    for entry in BENCHMARKS:
        counts = Counter(s.split for s in load_benchmark(entry.benchmark, entry.prover))
        per_split = ", ".join(f"{split} {counts[split]}" for split in entry.splits)
        rows.append(
            (entry.benchmark, entry.prover, str(sum(counts.values())), per_split, entry.filename)
        )
    header = ("benchmark", "prover", "total", "per split", "file")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\nfiles: {bundled_path('')}  (origins and licences: SOURCES.md there)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="Benchmarks and corpora.")
    data_sub = parser.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    data_sub.add_parser("list", help="Bundled benchmarks with counts per split.").set_defaults(
        func=_list
    )
