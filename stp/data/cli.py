"""``stp data``: inspect the bundled benchmarks; extract the self-play corpora.

    stp data list
    stp data extract-rocq --out artifacts/corpus-rocq [--modules Arith,Lists] [--max-theorems N]
    stp data extract-lean --out artifacts/corpus-lean --stp-data kfdong/STP_Lean_0320 \
        --max-rows 200000 --leanworkbook internlm/Lean-Workbook
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from stp.config import add_config_arguments, config_from_args
from stp.data.benchmarks import BENCHMARKS, bundled_path, load_benchmark
from stp.data.corpus import CONJECTURE_TARGETS


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


def _extract_rocq(args: argparse.Namespace) -> int:
    from stp.data.rocq_corpus import DEFAULT_MODULES, extract_rocq
    from stp.verify import make_verifier

    config = config_from_args(args, ["verification.backend=rocq"])
    if args.modules == "all":
        modules = None
    elif args.modules:
        modules = tuple(m.strip() for m in args.modules.split(",") if m.strip())
    else:
        modules = DEFAULT_MODULES
    with make_verifier(config.verification) as verifier:
        summary = extract_rocq(
            args.out,
            verifier,
            modules=modules,
            max_theorems=args.max_theorems,
            heldout_fraction=args.heldout,
            selfplay_fraction=args.selfplay,
            memory_limit_mb=config.verification.memory_limit_mb,
            conjecture_targets=args.conjecture_targets,
        )
    print("\n".join(summary.lines()))
    print(f"corpus: {args.out}")
    return 0


def _extract_lean(args: argparse.Namespace) -> int:
    from stp.data.lean_corpus import extract_lean

    summary = extract_lean(
        args.out,
        stp_data=args.stp_data,
        traced_repo=args.traced_repo,
        leanworkbook=args.leanworkbook,
        leanworkbook_file=args.leanworkbook_file,
        max_rows=args.max_rows,
        heldout_fraction=args.heldout,
        selfplay_fraction=args.selfplay,
    )
    print("\n".join(summary.lines()))
    print(f"corpus: {args.out}")
    return 0


def _add_split_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="Corpus folder to write.")
    parser.add_argument(
        "--heldout", type=float, default=0.1, help="Share of theorems held out for evaluation."
    )
    parser.add_argument(
        "--selfplay",
        type=float,
        default=0.2,
        help="Share of theorems that are self-play targets (their proofs are not trained on).",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="Benchmarks and corpora.")
    data_sub = parser.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    data_sub.add_parser("list", help="Bundled benchmarks with counts per split.").set_defaults(
        func=_list
    )
    rocq = data_sub.add_parser(
        "extract-rocq",
        help="Statement/proof pairs and lemmas from the Coq standard library, each checked "
        "with the Rocq verifier; resumable.",
    )
    _add_split_arguments(rocq)
    rocq.add_argument(
        "--modules",
        help="Comma-separated stdlib folders (Arith,Lists,...) or 'all'; default: the "
        "arithmetic, lists and logic folders (see stp.data.rocq_corpus.DEFAULT_MODULES).",
    )
    rocq.add_argument(
        "--max-theorems", type=int, help="Check at most this many theorems (a hash-chosen subset)."
    )
    rocq.add_argument(
        "--conjecture-targets",
        type=int,
        default=CONJECTURE_TARGETS,
        help="Conjecturer examples per sft seed with a lemma, and as many with the trivial "
        "lemma (targets: same-file sft theorems).",
    )
    add_config_arguments(rocq, ("verification",))
    rocq.set_defaults(func=_extract_rocq)
    lean = data_sub.add_parser(
        "extract-lean",
        help="The Lean corpus from the STP release, a LeanDojo trace of Mathlib and LeanWorkbook.",
    )
    _add_split_arguments(lean)
    lean.add_argument(
        "--stp-data",
        help="STP's released data: hub id (kfdong/STP_Lean_0320) or a local JSON/JSONL/Parquet copy.",
    )
    lean.add_argument(
        "--max-rows", type=int, help="Read at most this many rows of --stp-data (streamed)."
    )
    lean.add_argument(
        "--traced-repo", type=Path, help="A LeanDojo trace saved on disk (needs the `lean` extra)."
    )
    lean.add_argument("--leanworkbook", help="LeanWorkbook hub id (internlm/Lean-Workbook).")
    lean.add_argument("--leanworkbook-file", help="A local LeanWorkbook JSON/JSONL/Parquet file.")
    lean.set_defaults(func=_extract_lean)
