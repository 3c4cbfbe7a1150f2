"""``stp round`` (advance a run by one self-play round) and ``stp run`` (report, final-retrain).

stp round --config configs/tiny-rocq.yaml            # one round (resumes an unfinished one)
stp round --config configs/tiny-rocq.yaml --rounds 3 # three
stp run report runs/tiny-rocq                        # table + runs/tiny-rocq/curves.png
stp run final-retrain --config configs/tiny-rocq.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stp.config import add_config_arguments, config_from_args

# The config sections a round (and the final re-training) reads.
ROUND_SECTIONS = ("run", "sampling", "verification", "selection", "gate", "training", "tiny_model")


def _round(args: argparse.Namespace) -> int:
    from stp.selfplay.round import advance

    config = config_from_args(args)
    for _ in range(args.rounds):
        advance(config)
    return 0


def _report(args: argparse.Namespace) -> int:
    from stp.selfplay.report import format_table, load_rounds, plot_curves

    run_dir = Path(args.run)
    if not run_dir.is_dir() and (Path("runs") / args.run).is_dir():
        run_dir = Path("runs") / args.run
    rows = load_rounds(run_dir)
    if not rows:
        print(f"{run_dir}: no finished round yet")
        return 0
    print(format_table(rows))
    out = plot_curves(rows, args.out or run_dir / "curves.png", run_dir.name)
    print(f"\nlearning curves: {out}")
    return 0


def _final(args: argparse.Namespace) -> int:
    from stp.runs import RunLayout
    from stp.selfplay.final import final_retrain
    from stp.selfplay.lock import run_lock

    config = config_from_args(args)
    with run_lock(RunLayout.of(config).root):
        final_retrain(config)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    round_parser = subparsers.add_parser(
        "round",
        help="Advance a run by one self-play round (resuming an unfinished round first).",
    )
    add_config_arguments(round_parser, ROUND_SECTIONS)
    round_parser.add_argument(
        "--rounds", type=int, default=1, help="Rounds to run one after another (default 1)."
    )
    round_parser.set_defaults(func=_round)

    run = subparsers.add_parser("run", help="Inspect and finish self-play runs.")
    run_sub = run.add_subparsers(dest="run_command", required=True, metavar="SUBCOMMAND")
    report = run_sub.add_parser("report", help="Per-round table and learning curves (PNG).")
    report.add_argument("run", help="Run folder (runs/<name>) or run name.")
    report.add_argument("--out", type=Path, help="PNG path (default: <run>/curves.png).")
    report.set_defaults(func=_report)
    final = run_sub.add_parser(
        "final-retrain",
        help="Train the start model on every correct proof of the run (capped per statement).",
    )
    add_config_arguments(final, ROUND_SECTIONS)
    final.set_defaults(func=_final)
